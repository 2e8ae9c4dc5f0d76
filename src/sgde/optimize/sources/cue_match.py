"""How the ``cues`` classifier matches cue words in a text, and which cues it keeps.

The matching functions here are the classifier's own code: :func:`matcher_source` copies their
source into the program sgde writes (it runs in the sandbox like every program), and sgde
uses the same functions when it filters the teacher's cues against the training rows
(:func:`vocabulary`), so that the filter and the program agree. They use builtins only.

A label's cues become its *words* (every word of its cue phrases, function words left out)
and its *phrases* (its cues of two or more words). A text's score for a label is the number
of its words matching one of the label's words plus the number of the label's phrases found
in it. A cue word matches the same word; one of four or more letters also matches a word
beginning with it or with its stem (the word less one ending: ing, ed, es, s, e), so that
"refund" matches "refunded" and "arrives" "arrival". A cue is dropped when it belongs to no
one label: a word the cues of two labels share, or a word or phrase found in a training row
of another label (the rows show it says nothing about this label: a product's name the
teacher copied from a row, a word every case has).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence

__all__ = ["LabelCues", "matcher_source", "vocabulary", "words_of"]

LabelCues = dict[str, dict[str, list[str]]]  # label -> {"words": [...], "phrases": [...]}

# Function words: never a cue alone (negations stay: "not" tells labels apart).
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "as",
        "into",
        "onto",
        "out",
        "up",
        "over",
        "about",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "shall",
        "please",
        "hello",
        "hi",
        "dear",
        "thanks",
        "thank",
        "just",
        "so",
        "very",
        "also",
        "too",
        "then",
        "than",
        "only",
        "any",
        "some",
        "all",
        "each",
        "per",
    ]
)


def words_of(text: str) -> list[str]:
    """The text's words: case folded, every run of non-alphanumerics a separator."""
    return re.sub(r"[^0-9a-z]+", " ", str(text).casefold()).split()


def _stem(word: str) -> str:
    """The word less one ending (ing, ed, es, s, e) when four or more letters remain."""
    for ending in ("ing", "ed", "es", "s", "e"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def _same(cue_word: str, word: str) -> bool:
    """A cue word matches the same word; one of four or more letters also matches a word
    beginning with it or with its stem (refund: refunded; arrives: arrival)."""
    if word == cue_word:
        return True
    return len(cue_word) >= 4 and (word.startswith(cue_word) or word.startswith(_stem(cue_word)))


def _found(phrase: str, words: list[str]) -> int:
    """How often the phrase's words occur in a row in ``words``."""
    parts = phrase.split()
    n = len(parts)
    return sum(
        all(_same(p, w) for p, w in zip(parts, words[i : i + n], strict=True))
        for i in range(len(words) - n + 1)
    )


def _score(cues: dict[str, list[str]], words: list[str]) -> int:
    """The words matching one of the label's cue words, plus its phrases found."""
    hits = sum(any(_same(c, w) for c in cues["words"]) for w in words)
    return hits + sum(_found(p, words) for p in cues["phrases"])


def _label(cues: dict[str, dict[str, list[str]]], order: list[str], words: list[str]) -> str:
    """The label scoring highest; a tie goes to the tied label most frequent in training, no
    match at all to the label most frequent in training (``order``: labels by training
    frequency, then in the label set's order)."""
    scores = {label: _score(cues[label], words) for label in order}
    best = max(scores.values())
    return next(label for label in order if scores[label] == best) if best > 0 else order[0]


def matcher_source() -> str:
    """The source of the matching functions, for the classifier program (needs ``re``)."""
    return "\n\n".join(
        inspect.getsource(f) for f in (words_of, _stem, _same, _found, _score, _label)
    )


def vocabulary(
    cues: Mapping[str, Sequence[str]], rows: Mapping[str, Sequence[Sequence[str]]]
) -> LabelCues:
    """Label -> its cue words and phrases (see the module docstring for which are kept);
    ``rows``: label -> the words of each training row of that label."""
    words = {
        label: list(dict.fromkeys(w for c in listed for w in c.split() if w not in _STOP))
        for label, listed in cues.items()
    }
    owners = {w: sum(w in ws for ws in words.values()) for ws in words.values() for w in ws}

    def elsewhere(label: str, phrase: str) -> bool:
        return any(
            _found(phrase, list(row))
            for other, seen in rows.items()
            if other != label
            for row in seen
        )

    return {
        label: {
            "words": [w for w in words[label] if owners[w] == 1 and not elsewhere(label, w)],
            "phrases": [c for c in listed if len(c.split()) > 1 and not elsewhere(label, c)],
        }
        for label, listed in cues.items()
    }
