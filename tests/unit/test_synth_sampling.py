"""Synthesis: determinism, constraints, labels, magnitudes and the max-tries error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sgde.errors import DataError
from sgde.evaluation.gsm.synth import MAGNITUDE_CLASSES, check_values, synthesise_async
from sgde.evaluation.gsm.templates import Intermediate, Template, get_template, load_templates
from sgde.runtime.jsonl import write_jsonl
from sgde.runtime.sandbox import SandboxPool


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(workers=1) as p:
        yield p


@pytest.fixture(scope="module")
def duck() -> Template:
    return get_template("gsmhard-0000")


def _with_decimals() -> Template:
    return next(
        t for t in load_templates() if any(not p.integral for p in t.params) and len(t.params) >= 2
    )


async def test_same_seed_same_bytes_different_seed_different_rows(
    duck: Template, pool: SandboxPool, tmp_path: Path
) -> None:
    a = await synthesise_async(duck, n=6, seed=3, sandbox=pool)
    b = await synthesise_async(duck, n=6, seed=3, sandbox=pool)
    c = await synthesise_async(duck, n=6, seed=4, sandbox=pool)
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", b)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert [r["values"] for r in a] != [r["values"] for r in c]
    assert len({r["question"] for r in a}) == 6
    assert {r["template_id"] for r in a} == {"gsmhard-0000"}
    assert all(r["seed"] == 3 for r in a)


async def test_rows_keep_the_constraints_and_labels_are_right(
    duck: Template, pool: SandboxPool
) -> None:
    rows = await synthesise_async(duck, n=10, seed=0, sandbox=pool)
    for row in rows:
        v = row["values"]
        assert check_values(duck, v) is None
        assert all(isinstance(x, int) and x >= 2 for x in v.values())  # integral, positive
        assert len(set(v.values())) == len(v)  # distinct
        eggs_sold = v["eggs_per_day"] - v["eggs_eaten"] - v["eggs_baked"]
        assert eggs_sold >= 0  # non-negative intermediate, as in GSM8K's original
        assert row["answer"] == eggs_sold * v["price_per_egg"]  # recomputed label
        assert isinstance(row["answer"], int)
        assert duck.render(v) == row["question"]
        assert f"lay {v['eggs_per_day']} eggs" in row["question"]
        assert ".0 " not in row["question"]


async def test_magnitude_classes_cover_small_to_ten_million(
    duck: Template, pool: SandboxPool
) -> None:
    rows = await synthesise_async(duck, n=len(MAGNITUDE_CLASSES), seed=1, sandbox=pool)
    assert [r["magnitude"] for r in rows] == [c.name for c in MAGNITUDE_CLASSES]
    biggest = [max(r["values"].values()) for r in rows]
    assert biggest[0] < 100
    assert biggest[3] >= 10**6  # "huge": 7-8 digits
    carry = rows[4]["values"]
    lead = max(carry.values())
    assert set(str(lead)) <= set("56789")  # digits chosen so sums and products carry


async def test_decimals_only_where_the_original_allows(pool: SandboxPool) -> None:
    t = _with_decimals()
    rows = await synthesise_async(t, n=5, seed=0, sandbox=pool)
    for row in rows:
        for p in t.params:
            value = row["values"][p.name]
            if p.integral:
                assert isinstance(value, int)
            else:
                assert round(value, p.decimals) == value
        expected = await pool.call(t.code, row["values"])
        assert row["answer"] == pytest.approx(expected, abs=1e-6)


async def test_max_tries_error_names_the_failed_constraint(
    duck: Template, pool: SandboxPool
) -> None:
    impossible = duck.model_copy(
        update={
            "intermediates": (
                Intermediate(name="eggs_sold", value=9, nonnegative=True, integral=True),
            ),
            "code": duck.code.replace(
                "eggs_sold = eggs_per_day - eggs_eaten - eggs_baked",
                "eggs_sold = -eggs_per_day - eggs_eaten - eggs_baked",
            ),
        }
    )
    with pytest.raises(DataError, match=r"nonnegative:eggs_sold \(\d+ of 40\)"):
        await synthesise_async(impossible, n=1, seed=0, sandbox=pool, max_tries=40)


async def test_train_split_is_disjoint(duck: Template, pool: SandboxPool) -> None:
    test = await synthesise_async(duck, n=5, seed=0, sandbox=pool)
    train = await synthesise_async(
        duck, n=3, seed=0, sandbox=pool, split="train", exclude={r["question"] for r in test}
    )
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert all(r["id"].startswith("gsmhard-0000-train-s0-") for r in train)
