"""Task families over short texts: counting a letter, and a review's sentiment (a label).

``letter-count`` is string manipulation (the student must read one letter and one word and
count: code can do the counting once both are extracted). ``review-sentiment`` is a label
the student gets right most of the time but not always: a review of three clauses whose
majority polarity is the label, so single samples are swayed by the odd clause out and a
vote over samples can help.
"""

from __future__ import annotations

import random
from typing import Any

from sgde.evaluation.tasks.base import Draw, TaskFamily

__all__ = ["LETTER_COUNT", "REVIEW_SENTIMENT"]

_WORDS = (
    "strawberry", "banana", "committee", "mississippi", "bookkeeper", "assessment",
    "parallel", "balloon", "coffee", "necessary", "accommodate", "tomorrow", "occurrence",
    "raspberry", "possession", "address", "millennium", "embarrass", "success", "cinnamon",
    "giraffe", "hippopotamus", "pepper", "referee", "tattoo", "umbrella", "vanilla",
    "woodpecker", "yellow", "zucchini", "letter", "programming", "grammar", "penguin",
    "kangaroo", "mammoth", "butterfly", "chocolate", "alphabet", "calendar", "daffodil",
    "excellent", "horror", "illness", "jellyfish", "lollipop", "noodle", "onion", "puppet",
    "quarrel", "rhythm", "spaghetti", "teaspoon", "volleyball", "waterfall", "bubble",
)  # fmt: skip


def _draw_letter(rng: random.Random) -> Draw:
    word = rng.choice(_WORDS)
    if rng.random() < 0.85:
        letter = rng.choice(sorted(set(word)))
    else:
        letter = rng.choice(sorted(set("abcdefghijklmnopqrstuvwxyz") - set(word)))
    return Draw(values={"word": word, "letter": letter}, outputs={"answer": word.count(letter)})


def _letter_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"How many times does the letter '{v['letter']}' appear in the word "
            f"\"{v['word']}\"?"}  # fmt: skip


def _letter_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"Count how often {v['letter'].upper()} occurs in {v['word'].upper()}."}


def _letter_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"Word: {v['word'].capitalize()}. Letter: {v['letter']}. "
            "Give the number of occurrences (upper or lower case)."}  # fmt: skip


def _letter_p3(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"In '{v['word']}', what is the count of the character {v['letter']}?"}


LETTER_COUNT = TaskFamily(
    name="letter-count",
    kind="strings",
    description=(
        "Count how many times the given letter occurs in the given word (case-insensitive) "
        "and return the count as `answer`."
    ),
    inputs={"text": "string"},
    outputs={"answer": "integer"},
    draw=_draw_letter,
    phrasings=(_letter_p0, _letter_p1, _letter_p2, _letter_p3),
    summary="count a letter in a word (4 phrasings)",
)

_ITEMS = ("headphones", "blender", "backpack", "lamp", "kettle", "phone case", "desk chair",
          "tent", "keyboard", "coffee maker", "jacket", "toaster")  # fmt: skip
_POSITIVE = (
    "the sound is superb", "it arrived quickly", "the build quality is excellent",
    "it works perfectly", "the price was a bargain", "setup took two minutes",
    "my kids love it", "the battery lasts for days", "it looks beautiful",
    "customer service was friendly", "it is very comfortable", "it does exactly what it says",
)  # fmt: skip
_NEGATIVE = (
    "the handle broke after a week", "it arrived late", "the instructions are useless",
    "it stopped working", "it was overpriced", "setup was a nightmare",
    "it smells of plastic", "the battery dies within an hour", "it looks cheap",
    "support never answered", "it is very uncomfortable", "it is much smaller than shown",
)  # fmt: skip


def _draw_review(rng: random.Random) -> Draw:
    label = rng.choice(("positive", "negative"))
    major, minor = (_POSITIVE, _NEGATIVE) if label == "positive" else (_NEGATIVE, _POSITIVE)
    clauses = [*rng.sample(major, 2), rng.choice(minor)]
    rng.shuffle(clauses)
    return Draw(
        values={"item": rng.choice(_ITEMS), "clauses": clauses},
        outputs={"label": label},
    )


def _sentence(clauses: list[str]) -> str:
    a, b, c = clauses
    return f"{a[0].upper()}{a[1:]}, {b}, and {c}."


def _review_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"Review of a {v['item']}: {_sentence(v['clauses'])} "
            "Is this review positive or negative overall?"}  # fmt: skip


def _review_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    points = "; ".join(v["clauses"])
    return {"text": f"A customer wrote about the {v['item']} they bought: \"{points}.\" "
            "What is the overall sentiment?"}  # fmt: skip


def _review_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    bullets = " ".join(f"- {c}." for c in v["clauses"])
    return {"text": f"Feedback ({v['item']}): {bullets} Classify as positive or negative."}


REVIEW_SENTIMENT = TaskFamily(
    name="review-sentiment",
    kind="label (voting)",
    description=(
        "Classify the overall sentiment of the product review as `label`: positive or "
        "negative. A review makes three points; the label is the side of the majority."
    ),
    inputs={"text": "string"},
    outputs={"label": "enum[negative,positive]"},
    draw=_draw_review,
    phrasings=(_review_p0, _review_p1, _review_p2),
    summary="sentiment label of a 3-point review (3 phrasings; voting may help)",
)
