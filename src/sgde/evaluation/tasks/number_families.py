"""Task families over quantities: a median of a variable-length list, an order total with a
discount, a shipping price after classifying the destination, and a rectangle's several
outputs.

Money is computed in :class:`decimal.Decimal` and rounded half up to the cent, so the gold
values are exact two-decimal numbers; an order total that falls exactly on a half cent is
redrawn, so that no label depends on a rounding convention the task does not state.
"""

from __future__ import annotations

import random
import statistics
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sgde.evaluation.tasks.base import Draw, TaskFamily

__all__ = [
    "LIST_MEDIAN",
    "LIST_TOP_THREE",
    "ORDER_TOTAL",
    "RECTANGLE",
    "SHIPPING_PRICE",
    "half_cent",
    "money",
]

_CENT = Decimal("0.01")


def money(value: Decimal) -> float:
    """``value`` rounded half up to the cent, as a float (``12.345`` -> ``12.35``)."""
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _plain(value: float | int) -> str:
    """A number without a trailing ``.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


# -- list-median --------------------------------------------------------------------------


def _draw_median(rng: random.Random) -> Draw:
    numbers = [rng.randint(1, 99) for _ in range(rng.randint(5, 9))]
    median = statistics.median(numbers)
    answer = int(median) if float(median).is_integer() else float(median)
    return Draw(values={"numbers": numbers}, outputs={"answer": answer})


def _median_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    return {"text": "What is the median of " + ", ".join(map(str, d.values["numbers"])) + "?"}


def _median_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    temps = "; ".join(f"{n} °C" for n in d.values["numbers"])
    return {"text": f"The noon temperatures this period were {temps}. "
            "Find the median temperature in °C."}  # fmt: skip


def _median_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    return {"text": f"Median of the list [{' '.join(map(str, d.values['numbers']))}]:"}


def _median_p3(d: Draw, rng: random.Random) -> dict[str, Any]:
    scores = " and ".join(
        [", ".join(map(str, d.values["numbers"][:-1])), str(d.values["numbers"][-1])]
    )
    return {"text": f"A team scored {scores} points in its last "
            f"{len(d.values['numbers'])} games. What is its median score?"}  # fmt: skip


LIST_MEDIAN = TaskFamily(
    name="list-median",
    kind="lists",
    description=(
        "Return as `answer` the median of the list of numbers given in the text "
        "(5 to 9 numbers; for an even count, the mean of the two middle values)."
    ),
    inputs={"text": "string"},
    outputs={"answer": "number"},
    draw=_draw_median,
    phrasings=(_median_p0, _median_p1, _median_p2, _median_p3),
    summary="median of 5-9 numbers (4 phrasings)",
)

# -- list-top-three (a list output) --------------------------------------------------------


def _draw_top(rng: random.Random) -> Draw:
    numbers = rng.sample(range(1, 500), rng.randint(5, 9))
    return Draw(values={"numbers": numbers}, outputs={"answer": sorted(numbers)[::-1][:3]})


def _top_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    return {"text": "List the three largest of " + ", ".join(map(str, d.values["numbers"]))
            + ", from largest to smallest."}  # fmt: skip


def _top_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    prices = " / ".join(f"${n}" for n in d.values["numbers"])
    return {"text": f"Bids received: {prices}. Which are the top three bids, highest first?"}


def _top_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    return {"text": f"Podium (first, second, third) for the scores "
            f"[{'; '.join(map(str, d.values['numbers']))}]?"}  # fmt: skip


LIST_TOP_THREE = TaskFamily(
    name="list-top-three",
    kind="lists (list output)",
    description=(
        "Return as `answer` the three largest numbers of the list in the text, as a list "
        "in decreasing order (5 to 9 distinct numbers)."
    ),
    inputs={"text": "string"},
    outputs={"answer": "list[integer]"},
    draw=_draw_top,
    phrasings=(_top_p0, _top_p1, _top_p2),
    summary="the three largest of 5-9 numbers, as a list (3 phrasings)",
)

# -- order-total --------------------------------------------------------------------------

_PRODUCTS = (("notebook", "notebooks"), ("pen", "pens"), ("mug", "mugs"), ("lamp", "lamps"),
             ("towel", "towels"), ("candle", "candles"), ("plate", "plates"),
             ("cushion", "cushions"), ("poster", "posters"), ("battery", "batteries"))  # fmt: skip


def half_cent(value: Decimal) -> bool:
    """Whether ``value`` lies exactly halfway between two cents (``197.505``): its rounding to
    the cent then depends on a convention the task does not state (half up gives 197.51,
    Python's ``round`` on a float 197.5), so a draw with such a total is redrawn."""
    return (value * 100) % 1 == Decimal("0.5")


def _draw_order(rng: random.Random) -> Draw:
    while True:
        products = rng.sample(_PRODUCTS, rng.randint(2, 4))
        lines: list[dict[str, Any]] = [
            {"item": p, "qty": rng.randint(1, 6), "price": rng.randint(50, 4000) / 100}
            for p in products
        ]
        discount = rng.choice((5, 10, 15, 20, 25, 30))
        subtotal = sum(
            (Decimal(line["qty"]) * Decimal(str(line["price"])) for line in lines), Decimal(0)
        )
        exact = subtotal * (100 - discount) / 100
        if not half_cent(exact):
            break
    return Draw(values={"lines": lines, "discount": discount}, outputs={"answer": money(exact)})


def _qty_name(line: dict[str, Any]) -> str:
    single, plural = line["item"]
    return f"{line['qty']} {single if line['qty'] == 1 else plural}"


def _listing(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _order_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    parts = [f"{_qty_name(x)} at ${x['price']:.2f} each" for x in d.values["lines"]]
    return {"text": f"I buy {_listing(parts)}. A {d.values['discount']}% discount applies to "
            "the whole order. How much do I pay in dollars?"}  # fmt: skip


def _order_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    parts = [f"{x['item'][0]} x{x['qty']} (${x['price']:.2f} each)" for x in d.values["lines"]]
    return {"text": f"Order: {', '.join(parts)}. Coupon: {d.values['discount']}% off "
            "everything. Total due?"}  # fmt: skip


def _order_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    parts = [f"{_qty_name(x)} ({x['price']:.2f} dollars apiece)" for x in d.values["lines"]]
    return {"text": f"The cart holds {_listing(parts)}; the shop takes "
            f"{d.values['discount']} percent off the sum. What is the final price?"}  # fmt: skip


ORDER_TOTAL = TaskFamily(
    name="order-total",
    kind="decimals + percentages",
    description=(
        "Compute the order total as `answer`: the sum of quantity times unit price over "
        "every line, minus the percentage discount, rounded to the cent."
    ),
    inputs={"text": "string"},
    outputs={"answer": "number"},
    draw=_draw_order,
    phrasings=(_order_p0, _order_p1, _order_p2),
    summary="order total: 2-4 lines with decimals and a % discount (3 phrasings)",
)

# -- shipping-price -----------------------------------------------------------------------

_ZONES = {
    "domestic": ("Lyon", "Marseille", "Toulouse", "Lille", "Nantes", "Bordeaux"),
    "europe": ("Germany", "Italy", "Spain", "Belgium", "the Netherlands", "Portugal"),
    "overseas": ("Japan", "Brazil", "Canada", "Australia", "Mexico", "India"),
}
_RATES = {
    "domestic": (Decimal("4.00"), Decimal("1.50")),
    "europe": (Decimal("9.00"), Decimal("2.50")),
    "overseas": (Decimal("20.00"), Decimal("6.00")),
}


def _draw_shipping(rng: random.Random) -> Draw:
    zone = rng.choice(sorted(_ZONES))
    place = rng.choice(_ZONES[zone])
    weight = rng.randint(5, 200) / 10
    base, per_kg = _RATES[zone]
    price = money(base + per_kg * Decimal(str(weight)))
    return Draw(values={"zone": zone, "place": place, "weight": weight}, outputs={"answer": price})


def _ship_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"A parcel of {_plain(v['weight'])} kg is sent from Paris to {v['place']}. "
            "What does shipping cost?"}  # fmt: skip


def _ship_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"Destination: {v['place']}. Weight: {_plain(v['weight'])} kilograms. "
            "Origin: our Paris warehouse. Price?"}  # fmt: skip


def _ship_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    grams = round(v["weight"] * 1000)
    return {"text": f"How much to ship a {grams} g box from Paris to a customer in "
            f"{v['place']}?"}  # fmt: skip


SHIPPING_PRICE = TaskFamily(
    name="shipping-price",
    kind="classify, then compute",
    description=(
        "A parcel ships from Paris. Classify the destination into a zone, then return the "
        "price in euros as `answer` = base + rate per kg x weight in kg. Zones: domestic "
        "(a French city: Lyon, Marseille, Toulouse, Lille, Nantes, Bordeaux): 4.00 + 1.50/kg; "
        "europe (Germany, Italy, Spain, Belgium, the Netherlands, Portugal): 9.00 + 2.50/kg; "
        "overseas (any other country): 20.00 + 6.00/kg. Round to the cent."
    ),
    inputs={"text": "string"},
    outputs={"answer": "number"},
    draw=_draw_shipping,
    phrasings=(_ship_p0, _ship_p1, _ship_p2),
    summary="zone from the destination, then a price rule (3 phrasings)",
)

# -- rectangle (several outputs) ----------------------------------------------------------


def _draw_rectangle(rng: random.Random) -> Draw:
    length = rng.randint(2, 60)
    width = length if rng.random() < 0.3 else rng.randint(2, 60)
    return Draw(
        values={"length": length, "width": width},
        outputs={
            "area": length * width,
            "perimeter": 2 * (length + width),
            "is_square": length == width,
        },
    )


def _rect_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"A rectangle is {v['length']} cm long and {v['width']} cm wide. Give its "
            "area, its perimeter, and whether it is a square."}  # fmt: skip


def _rect_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"Room plan: {v['width']} m by {v['length']} m. Floor area? Length of "
            "skirting board around it? Square room?"}  # fmt: skip


def _rect_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"text": f"The width of a field is {v['width']} yards and its length is "
            f"{v['length']} yards. Find the area and the fence length, and say if the field "
            "is square."}  # fmt: skip


RECTANGLE = TaskFamily(
    name="rectangle",
    kind="several outputs",
    description=(
        "From the two side lengths in the text, return `area` (length x width), `perimeter` "
        "(2 x (length + width)) and `is_square` (true when both sides are equal)."
    ),
    inputs={"text": "string"},
    outputs={"area": "integer", "perimeter": "integer", "is_square": "boolean"},
    draw=_draw_rectangle,
    phrasings=(_rect_p0, _rect_p1, _rect_p2),
    summary="area, perimeter and is_square of a rectangle (3 outputs, 3 phrasings)",
)
