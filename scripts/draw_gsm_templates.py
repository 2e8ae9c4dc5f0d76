"""Draw GSM-Hard templates at random with a fixed seed, keeping those that synthesise.

The templates of a benchmark are not chosen by hand: this script shuffles every vendored
template id with ``random.Random(seed)``, walks the shuffled list, and keeps a template when
``sgde``'s synthesiser can produce its test set (``--n-test`` rows) and its training pool
(``--m`` rows) with the same seed as ``sgde bench``. It stops after ``--count`` templates and
prints them as the ``templates:`` block of a bench configuration, with each one's first words.

    python scripts/draw_gsm_templates.py --count 20 --seed 2026 --exclude gsmhard-0000 \\
        --exclude gsmhard-0001

Rejected templates (and why) go to stderr, so the draw can be audited.
"""

from __future__ import annotations

import argparse
import random
import sys

from sgde.errors import SgdeError
from sgde.evaluation.bench_grid import data_seed
from sgde.evaluation.gsm.synth import synthesise
from sgde.evaluation.gsm.templates import load_templates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="templates to keep")
    parser.add_argument("--seed", type=int, default=2026, help="shuffle seed")
    parser.add_argument("--n-test", type=int, default=20, help="test rows each must yield")
    parser.add_argument("--m", type=int, default=3, help="training rows each must yield")
    parser.add_argument("--data-seed", type=int, default=0, help="the bench's run seed (`seeds:`)")
    parser.add_argument("--exclude", action="append", default=[], help="template id to skip")
    args = parser.parse_args(argv)

    templates = sorted(load_templates(), key=lambda t: t.id)
    order = list(templates)
    random.Random(args.seed).shuffle(order)
    kept: list[tuple[str, str]] = []
    for template in order:
        if len(kept) == args.count:
            break
        if template.id in args.exclude:
            continue
        try:
            test = synthesise(
                template,
                n=args.n_test,
                seed=data_seed(args.data_seed, "test", template.id),
                split="test",
            )
            synthesise(
                template,
                n=args.m,
                seed=data_seed(args.data_seed, "train", template.id),
                split="train",
                exclude=[str(r["question"]) for r in test],
            )
        except SgdeError as exc:
            print(f"skip {template.id}: {exc.message.splitlines()[0]}", file=sys.stderr)
            continue
        first = str(test[0]["question"]).split(".")[0][:60]
        kept.append((template.id, first))
    if len(kept) < args.count:
        print(f"only {len(kept)} templates synthesise", file=sys.stderr)
        return 1
    script = "scripts/draw_gsm_templates.py"
    print(f"templates:   # {args.count} drawn with {script} --seed {args.seed}")
    for template_id, first in kept:
        print(f"  - {template_id}   # {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
