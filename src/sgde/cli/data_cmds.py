"""Data commands: ``sgde synth`` (GSM-Hard sets, task families) and ``sgde data coverage``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from sgde.cli.common import JsonOpt, check_output_file, err_console, out_console
from sgde.cli.output import dumps_json
from sgde.errors import UsageError
from sgde.evaluation.gsm.synth import synthesise_async
from sgde.evaluation.gsm.templates import Template, coverage, get_template, load_template_results
from sgde.evaluation.tasks import FAMILIES, get_family
from sgde.runtime.jsonl import write_jsonl

__all__ = ["register"]

data_app = typer.Typer(
    name="data",
    help="Inspect the vendored GSM-Hard data and its templates.",
    no_args_is_help=True,
)


def _train_path(out: Path) -> Path:
    return out.with_name(out.stem + ".train" + (out.suffix or ".jsonl"))


async def _synth_files(
    template: Template,
    *,
    n: int,
    seed: int,
    train: int,
    max_tries: int,
    thousands: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from sgde.runtime.sandbox import SandboxPool

    async with SandboxPool(workers=1) as pool:
        test_rows = await synthesise_async(
            template, n=n, seed=seed, sandbox=pool, max_tries=max_tries, thousands=thousands
        )
        train_rows: list[dict[str, Any]] = []
        if train:
            train_rows = await synthesise_async(
                template,
                n=train,
                seed=seed,
                sandbox=pool,
                split="train",
                exclude={r["question"] for r in test_rows},
                max_tries=max_tries,
                thousands=thousands,
            )
    return test_rows, train_rows


def synth(
    list_: Annotated[
        bool, typer.Option("--list", help="List template ids (id, then a short description).")
    ] = False,
    template: Annotated[
        str | None,
        typer.Option("--template", "-t", help="Template id, e.g. gsmhard-0000 (or a row number)."),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", "-f", help="Task family instead of a template, e.g. date-add."),
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Rows to synthesise.")] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (JSONL).", dir_okay=False)
    ] = None,
    split_train: Annotated[
        int,
        typer.Option(
            "--split-train",
            min=0,
            metavar="M",
            help="Also write M training rows (disjoint from the test rows) to OUT.train.jsonl.",
        ),
    ] = 0,
    max_tries: Annotated[
        int, typer.Option("--max-tries", min=1, help="Candidates per row before giving up.")
    ] = 2000,
    thousands: Annotated[
        bool, typer.Option("--thousands", help="Write numbers with thousands separators.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="With --list: print [{id, kind, description}] as JSON (for scripts)."
        ),
    ] = False,
) -> None:
    """Synthesise an adversarial set from a GSM-Hard template, or rows of a task family;
    labels come from code.

    Same template (or family), n and seed always give a byte-identical file. The training
    rows of a family come from their own seeded stream and never repeat a test row.
    """
    if list_:
        entries = [
            {"id": fam.name, "kind": f"task family ({fam.kind})", "description": fam.summary}
            for fam in FAMILIES.values()
        ]
        entries += [
            {"id": r.id, "kind": "template", "description": r.description}
            for r in load_template_results()
            if isinstance(r, Template)
        ]
        if as_json:
            typer.echo(dumps_json(entries, indent=2))
            return
        for e in entries:
            line = e["id"] + "  " + ("" if e["kind"] == "template" else f"{e['kind']}: ")
            out_console.print(line + e["description"], highlight=False, markup=False)
        return
    if (template is None) == (family is None) or out is None:
        raise UsageError(
            "sgde synth needs one of --template ID / --family NAME, and --out FILE.jsonl "
            "(or --list)",
            hint="e.g. sgde synth --family date-add --n 50 --seed 0 --out test.jsonl",
        )
    check_output_file(out, option="--out")
    if split_train:
        check_output_file(_train_path(out), option="--split-train (OUT.train.jsonl)")
    if family is not None:
        fam = get_family(family)
        test_rows = fam.generate(n, seed=seed, split="test")
        write_jsonl(out, test_rows)
        err_console.print(
            f"wrote {len(test_rows)} rows of {fam.name} (seed {seed}) to {out}", markup=False
        )
        if split_train:
            train_rows = fam.generate(
                split_train,
                seed=seed,
                split="train",
                exclude=[fam.input_key(r) for r in test_rows],
            )
            write_jsonl(_train_path(out), train_rows)
            err_console.print(
                f"wrote {len(train_rows)} training rows to {_train_path(out)}", markup=False
            )
        return
    assert template is not None
    tpl = get_template(template)
    test_rows, train_rows = asyncio.run(
        _synth_files(
            tpl, n=n, seed=seed, train=split_train, max_tries=max_tries, thousands=thousands
        )
    )
    write_jsonl(out, test_rows)
    err_console.print(
        f"wrote {len(test_rows)} rows from {tpl.id} (seed {seed}) to {out}", markup=False
    )
    if train_rows:
        train_out = _train_path(out)
        write_jsonl(train_out, train_rows)
        err_console.print(f"wrote {len(train_rows)} training rows to {train_out}", markup=False)


@data_app.command("coverage")
def coverage_cmd(
    failures: Annotated[
        bool, typer.Option("--failures", help="Also list every failed row with its detail.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """How many GSM-Hard rows are templatised, and why the others are not."""
    results = load_template_results()
    if as_json:
        data: dict[str, Any] = coverage(results).model_dump(mode="json")
        if failures:
            data["failures"] = [
                {"id": r.id, "reason": r.reason, "detail": r.detail}
                for r in results
                if not isinstance(r, Template)
            ]
        typer.echo(dumps_json(data, indent=2))
        return
    out_console.print(coverage(results).render(), highlight=False, markup=False)
    if failures:
        for r in results:
            if not isinstance(r, Template):
                detail = " ".join(r.detail.split())
                out_console.print(f"{r.id}  {r.reason}  {detail}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``sgde synth`` and the ``sgde data`` group to ``app``."""
    app.command("synth")(synth)
    app.add_typer(data_app, name="data")
