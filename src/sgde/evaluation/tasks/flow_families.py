"""Task families with structure: date arithmetic, and a refund workflow given as a plan.

``date-add`` words its start date in four formats (ISO, ``March 5, 2024``, ``5 March 2024``,
``05/03/2024`` day first), so neither a prompt nor a parser tuned to one wording passes.
``refund-workflow`` is a three-step workflow shipped as a plan (``plans/refund.yaml``:
classify the complaint -> extract quantity and unit price -> compute the refund), which the
compiler improves node by node.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from sgde.evaluation.tasks.base import Draw, TaskFamily
from sgde.evaluation.tasks.number_families import money

__all__ = ["DATE_ADD", "REFUND_WORKFLOW", "refund_amount"]

_FIRST = dt.date(2020, 1, 1).toordinal()
_LAST = dt.date(2027, 12, 31).toordinal()


def _draw_date(rng: random.Random) -> Draw:
    start = dt.date.fromordinal(rng.randint(_FIRST, _LAST))
    days = rng.randint(1, 400) if rng.random() < 0.7 else rng.randint(1, 31)
    end = start + dt.timedelta(days=days)
    return Draw(
        values={"start": start.isoformat(), "days": days},
        outputs={"answer": end.isoformat()},
    )


def _start(d: Draw) -> dt.date:
    return dt.date.fromisoformat(str(d.values["start"]))


def _date_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    return {"text": f"What is the date {d.values['days']} days after {d.values['start']}?"}


def _date_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    s = _start(d)
    return {"text": f"Starting on {s:%B} {s.day}, {s.year}, add {d.values['days']} days. "
            "Which date do you reach?"}  # fmt: skip


def _date_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    s = _start(d)
    return {"text": f"A package leaves on {s.day} {s:%B} {s.year} and arrives "
            f"{d.values['days']} days later. When does it arrive?"}  # fmt: skip


def _date_p3(d: Draw, rng: random.Random) -> dict[str, Any]:
    s = _start(d)
    return {"text": f"Loan taken out {s:%d/%m/%Y} (day/month/year), due in "
            f"{d.values['days']} days. Due date?"}  # fmt: skip


DATE_ADD = TaskFamily(
    name="date-add",
    kind="dates",
    description=(
        "Add the given number of days to the given start date and return the resulting "
        "date as `answer` (YYYY-MM-DD)."
    ),
    inputs={"text": "string"},
    outputs={"answer": "date"},
    draw=_draw_date,
    phrasings=(_date_p0, _date_p1, _date_p2, _date_p3),
    summary="a date plus N days, start date in 4 formats (4 phrasings)",
)

_REASONS = ("damaged", "late", "wrong_item")
_RETURN_SHIPPING = Decimal("4.99")
_GOODS = (("mug", "mugs"), ("lamp", "lamps"), ("chair", "chairs"), ("vase", "vases"),
          ("jacket", "jackets"), ("speaker", "speakers"), ("plate", "plates"),
          ("kettle", "kettles"))  # fmt: skip
_CUES = {
    "damaged": ("arrived broken", "came cracked", "were smashed in the box",
                "arrived with a dented side"),
    "late": ("arrived two weeks late", "came long after the promised date",
             "were delivered nine days late", "turned up a month after I ordered"),
    "wrong_item": ("are the wrong model", "were not what I ordered",
                   "came in the wrong colour", "are a different product entirely"),
}  # fmt: skip


def refund_amount(reason: str, quantity: int, unit_price: float) -> float:
    """The refund rule: damaged -> full price; wrong_item -> full price + 4.99 return
    shipping; late -> 20 % of the price; rounded half up to the cent."""
    paid = Decimal(quantity) * Decimal(str(unit_price))
    if reason == "damaged":
        return money(paid)
    if reason == "wrong_item":
        return money(paid + _RETURN_SHIPPING)
    return money(paid * Decimal("0.20"))


def _draw_refund(rng: random.Random) -> Draw:
    reason = rng.choice(_REASONS)
    quantity = rng.randint(1, 6)
    price = rng.randint(300, 9000) / 100
    return Draw(
        values={
            "reason": reason,
            "quantity": quantity,
            "unit_price": price,
            "goods": rng.choice(_GOODS),
            "cue": rng.choice(_CUES[reason]),
            "order": rng.randint(1000, 9999),
        },
        outputs={"refund": refund_amount(reason, quantity, price)},
    )


def _goods(v: dict[str, Any] | Any) -> str:
    single, plural = v["goods"]
    return str(single if v["quantity"] == 1 else plural)


def _refund_p0(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"message": f"Hello, I bought {v['quantity']} {_goods(v)} at ${v['unit_price']:.2f} "
            f"each and they {v['cue']}. What refund do I get?"}  # fmt: skip


def _refund_p1(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    return {"message": f"Order #{v['order']}: {_goods(v)} x{v['quantity']}, "
            f"{v['unit_price']:.2f} dollars per unit. Problem: they {v['cue']}."}  # fmt: skip


def _refund_p2(d: Draw, rng: random.Random) -> dict[str, Any]:
    v = d.values
    total = Decimal(v["quantity"]) * Decimal(str(v["unit_price"]))
    return {"message": f"The {_goods(v)} I ordered ({v['quantity']} of them, "
            f"${v['unit_price']:.2f} apiece, ${total:.2f} in all) {v['cue']}. "
            "Please refund me."}  # fmt: skip


REFUND_WORKFLOW = TaskFamily(
    name="refund-workflow",
    kind="3-node workflow (plan)",
    description=(
        "Read the customer's complaint, classify its reason (damaged, late or wrong_item), "
        "extract the quantity and the unit price, and compute the `refund`: damaged -> "
        "quantity x unit price; wrong_item -> quantity x unit price + 4.99 return shipping; "
        "late -> 20% of quantity x unit price; rounded to the cent."
    ),
    inputs={"message": "string"},
    outputs={"refund": "number"},
    draw=_draw_refund,
    phrasings=(_refund_p0, _refund_p1, _refund_p2),
    summary="classify -> extract -> compute, given as a 3-node plan (3 phrasings)",
    plan="refund.yaml",
)
