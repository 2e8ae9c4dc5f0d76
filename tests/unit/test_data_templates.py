"""The templatiser: known rows, label errors, coverage, and the vendored file being current."""

from __future__ import annotations

import json

import pytest

from sgde.evaluation.gsm.datasets import data_file, load_gsm_hard
from sgde.evaluation.gsm.templates import (
    FAILURE_REASONS,
    TEMPLATES_FILE,
    TEMPLATISER_VERSION,
    Template,
    TemplateFailure,
    coverage,
    get_template,
    load_template_results,
    source_digest,
)
from sgde.evaluation.gsm.templatiser import analyse, templatise_async
from sgde.runtime.sandbox import SandboxPool

# Measured on the vendored GSM-Hard (docs/data.md); a floor a little below the figure.
COVERAGE_FLOOR = 850


@pytest.fixture(scope="module")
def results() -> list[Template | TemplateFailure]:
    return load_template_results()


def _by_index(results: list[Template | TemplateFailure], index: int) -> Template | TemplateFailure:
    return next(r for r in results if r.index == index)


def test_row_0_duck_eggs(results: list[Template | TemplateFailure]) -> None:
    t = _by_index(results, 0)
    assert isinstance(t, Template)
    assert t.id == "gsmhard-0000"
    assert [p.name for p in t.params] == [
        "eggs_per_day",
        "eggs_eaten",
        "eggs_baked",
        "price_per_egg",
    ]
    assert t.originals() == {
        "eggs_per_day": 16,
        "eggs_eaten": 3,
        "eggs_baked": 4933828,
        "price_per_egg": 2,
    }
    assert {p.name: p.gsm8k for p in t.params}["eggs_baked"] == 4
    assert "She eats {eggs_eaten} for breakfast" in t.text  # the word "three" became a slot
    assert "${price_per_egg} per fresh duck egg" in t.text
    assert t.code.startswith("def run(eggs_per_day, eggs_eaten, eggs_baked, price_per_egg):")
    assert t.reference == "gsm8k" and t.answer_integral
    eggs_sold = next(i for i in t.intermediates if i.name == "eggs_sold")
    assert eggs_sold.value == 9 and eggs_sold.nonnegative  # GSM8K's 16 - 3 - 4, not GSM-Hard's
    expected = load_gsm_hard()[0].input.replace("three", "3")
    assert t.render(t.originals()) == expected


async def test_row_0_reproduces_target_in_the_sandbox(
    results: list[Template | TemplateFailure],
) -> None:
    t = _by_index(results, 0)
    assert isinstance(t, Template)
    async with SandboxPool(workers=1) as pool:
        assert await pool.call(t.code, t.originals()) == pytest.approx(t.target, abs=1e-6)
        gsm8k = {p.name: p.gsm8k for p in t.params}
        assert await pool.call(t.code, gsm8k) == 18


def test_row_51_label_error_is_rejected(results: list[Template | TemplateFailure]) -> None:
    f = _by_index(results, 51)
    assert isinstance(f, TemplateFailure)
    assert f.reason == "text-code-disagree"
    assert "18387270" in f.detail and "15" in f.detail


def test_row_2_stale_literal_is_rejected(results: list[Template | TemplateFailure]) -> None:
    f = _by_index(results, 2)  # "1793815 sprints 1793815 times" but code keeps days_per_week = 3
    assert isinstance(f, TemplateFailure)
    assert f.reason == "text-code-disagree"
    assert "days_per_week = 3" in f.detail


def test_coverage(results: list[Template | TemplateFailure]) -> None:
    cov = coverage(results)
    assert cov.total == 1319
    assert cov.templatised >= COVERAGE_FLOOR
    assert cov.templatised + sum(cov.by_reason.values()) == 1319
    assert set(cov.by_reason) <= set(FAILURE_REASONS)
    assert cov.by_reason["text-code-disagree"] >= 100
    assert "templatised" in cov.render()


def test_ids_are_stable_and_unique(results: list[Template | TemplateFailure]) -> None:
    assert [r.index for r in results] == list(range(1319))
    assert all(r.id == f"gsmhard-{r.index:04d}" for r in results)


def test_vendored_file_matches_source_and_version() -> None:
    path = data_file(TEMPLATES_FILE)
    header = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert header["source_sha256"] == source_digest(), "rerun scripts/build_templates.py"
    assert header["templatiser_version"] == TEMPLATISER_VERSION


def test_static_analysis_matches_vendored_file(results: list[Template | TemplateFailure]) -> None:
    """Re-derive text, code and params of every row (no execution); the file must agree."""
    for row in load_gsm_hard():
        stored = results[row.index]
        draft = analyse(row)
        if isinstance(draft, TemplateFailure):
            assert draft == stored, f"row {row.index}: rerun scripts/build_templates.py"
            continue
        if isinstance(stored, TemplateFailure):
            # Failed only when its code ran (verification); static analysis passes.
            assert stored.reason in {
                "code-error",
                "non-numeric-target",
                "target-mismatch",
                "template-mismatch",
                "gsm8k-mismatch",
            }, row.index
            continue
        assert (draft.text, draft.code, tuple(draft.params)) == (
            stored.text,
            stored.code,
            stored.params,
        ), f"row {row.index}: rerun scripts/build_templates.py"


def test_get_template_explains_failures() -> None:
    assert get_template("0").id == "gsmhard-0000"
    with pytest.raises(Exception, match="text-code-disagree"):
        get_template("gsmhard-0051")
    with pytest.raises(Exception, match="no template"):
        get_template("nonsense")


async def test_templatise_a_new_row_and_catch_a_label_error() -> None:
    code = (
        "def solution():\n"
        '    """Tom buys 4 apples at $3 each. How much does he pay?"""\n'
        "    apples = {a}\n"
        "    price = 3\n"
        "    result = apples * price\n"
        "    return result\n"
    )
    good = {
        "input": "Tom buys 7654321 apples at $3 each. How much does he pay?",
        "code": code.format(a=7654321),
        "target": 22962963.0,
    }
    bad = {**good, "code": code.format(a=4), "target": 12.0}
    async with SandboxPool(workers=1) as pool:
        t = await templatise_async(good, 7, sandbox=pool, gsm8k_answer=12.0)
        f = await templatise_async(bad, 8, sandbox=pool)
        wrong = await templatise_async({**good, "target": 5.0}, 9, sandbox=pool)
    assert isinstance(t, Template), t
    assert t.id == "gsmhard-0007"
    assert t.text == "Tom buys {apples} apples at ${price} each. How much does he pay?"
    assert t.reference == "gsm8k"
    assert isinstance(f, TemplateFailure) and f.reason == "text-code-disagree"
    assert isinstance(wrong, TemplateFailure) and wrong.reason == "target-mismatch"
