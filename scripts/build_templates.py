"""Rebuild the vendored GSM-Hard templates: src/sgde/evaluation/gsm/data/gsm_hard_templates.jsonl.

Templatises every GSM-Hard row (static alignment, then verification of every row's code in the
sandbox against GSM-Hard's target and GSM8K's answer) and writes the results with a header
holding the source file's sha256 and the templatiser version. Run it after changing
``sgde.evaluation.gsm.templatiser`` / ``_align`` / ``_mentions``;
``tests/unit/test_data_templates.py`` fails while the file is stale.

Usage:
    python scripts/build_templates.py [--check] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from sgde.evaluation.gsm.datasets import data_file, load_gsm8k_test, load_gsm_hard
from sgde.evaluation.gsm.templates import (
    TEMPLATES_FILE,
    Template,
    TemplateFailure,
    coverage,
    save_template_results,
)
from sgde.evaluation.gsm.templatiser import gsm8k_answers_by_question, templatise_many
from sgde.runtime.sandbox import SandboxPool


async def build(workers: int) -> list[Template | TemplateFailure]:
    """Templatise all vendored GSM-Hard rows in a sandbox pool."""
    rows = load_gsm_hard()
    answers = gsm8k_answers_by_question((r.question, r.final) for r in load_gsm8k_test())
    async with SandboxPool(workers=workers) as pool:
        return await templatise_many(rows, sandbox=pool, gsm8k=answers, concurrency=4 * workers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    parser.add_argument("--workers", type=int, default=2, help="sandbox worker processes")
    args = parser.parse_args()
    start = time.perf_counter()
    results = asyncio.run(build(args.workers))
    path = Path(data_file("gsm_hard.jsonl")).with_name(TEMPLATES_FILE)
    if args.check:
        tmp = path.with_suffix(".check.tmp")
        save_template_results(tmp, results)
        same = tmp.read_bytes() == path.read_bytes() if path.exists() else False
        tmp.unlink()
        print("up to date" if same else f"STALE: rerun {sys.argv[0]}")
        return 0 if same else 1
    save_template_results(path, results)
    print(coverage(results).render())
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
