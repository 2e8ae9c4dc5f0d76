"""Shared CLI helpers: consoles, error rendering and exit statuses, option parsing, output paths.

Exit statuses of every ``sgde`` command (documented in ``docs/cli.md``):

- ``0`` success;
- ``1`` failure: a plan is invalid (``validate``), plans differ (``diff``), a run or a row
  failed, a model or the sandbox failed, a budget ran out, an output could not be written;
- ``2`` usage error: an unknown option or a bad value, an input file that is missing or not
  readable, an output path that cannot be written, a plan or data file that does not load;
- ``3`` incomplete: some rows could not run (a model endpoint, the sandbox or the budget
  failed; ``eval``, ``run``); the finished rows are kept and ``--resume`` runs the rest;
- ``70`` internal error (a bug in sgde: the message asks for a report);
- ``130`` interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

from sgde.cli.output import SafeConsole
from sgde.errors import PlanError, SgdeError, UsageError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INCOMPLETE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "ApiKeyOpt",
    "JsonOpt",
    "OutputFile",
    "PricesOpt",
    "check_output_dir",
    "check_output_file",
    "check_output_parent",
    "check_prices_file",
    "check_resumable",
    "err_console",
    "item_progress",
    "out_console",
    "parse_assignments",
    "parse_input_value",
    "print_error",
    "report_incomplete",
    "run_cli",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="API key of HTTP model providers (default: OPENAI_API_KEY, ANTHROPIC_API_KEY, "
        "...). Prefer the variable: arguments show in the process list.",
        show_default=False,
    ),
]
PricesOpt = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        metavar="FILE",
        help="YAML of model prices, NAME: {input: USD/1M, output: USD/1M}, over the "
        "built-in table (for --budget-usd and cost reports).",
        show_default=False,
    ),
]

out_console: Console = SafeConsole(soft_wrap=True)
err_console: Console = SafeConsole(stderr=True, soft_wrap=True)


def print_error(message: str) -> None:
    """Print ``error: message`` on stderr (the message is user text: escaped)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def exit_status(exc: SgdeError) -> int:
    """The exit status of an sgde error: 2 for misuse and unloadable input, else 1."""
    return EXIT_USAGE if isinstance(exc, (UsageError, PlanError)) else EXIT_FAILURE


def _click_exceptions() -> Any:
    """The exception module of the click that typer runs on (recent typer vendors click)."""
    try:
        from typer._click import exceptions  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # typer that uses the click package
        from click import exceptions  # type: ignore[no-redef,unused-ignore]
    return exceptions


def _option_error(exc: Any, usage_error: type[Exception]) -> int:
    """Render a click usage/option error as ``usage`` + ``error:`` + hint lines."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `sgde` or a group without a command
        exc.show()
        return int(exc.exit_code)
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, usage_error) and ctx is not None:
        err_console.print(ctx.get_usage(), markup=False, highlight=False)
    print_error(exc.format_message())
    if isinstance(exc, usage_error) and ctx is not None:
        err_console.print(
            f"  hint: `{escape(ctx.command_path)} --help` lists the options", highlight=False
        )
    code = getattr(exc, "exit_code", EXIT_USAGE)
    return code if isinstance(code, int) else EXIT_USAGE


def run_cli(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run ``app`` and return its exit status (see the module docstring).

    Never shows a traceback: sgde errors and bad options are one ``error:`` message (with a
    hint), an ``OSError`` names its file, anything else is reported as an internal error.
    ``SGDE_DEBUG=1`` re-raises so developers see the traceback.
    """
    click_exc = _click_exceptions()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="sgde", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_exc.ClickException as exc:  # unknown option, bad value, missing argument
        return _option_error(exc, click_exc.UsageError)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except SgdeError as exc:
        if os.environ.get("SGDE_DEBUG"):
            raise
        print_error(str(exc))
        return exit_status(exc)
    except OSError as exc:  # an I/O failure no command anticipated: name the file
        if os.environ.get("SGDE_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print_error(f"{where}{exc.strerror or exc}")
        return EXIT_FAILURE
    except Exception as exc:  # a bug: one line, and how to see more
        if os.environ.get("SGDE_DEBUG"):
            raise
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        print_error(f"internal error: {type(exc).__name__}: {detail}")
        err_console.print(
            "  hint: this is a bug in sgde; rerun with SGDE_DEBUG=1 for the traceback and "
            "report it",
            highlight=False,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def parse_input_value(raw: str) -> Any:
    """Parse a ``--input`` value: JSON when it parses (numbers, lists, objects), else a string."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, a huge integer, or nested too deeply
        return raw


def parse_assignments(items: list[str] | None, *, option: str) -> dict[str, str]:
    """Parse repeated ``key=value`` options into a dict.

    Raises:
        UsageError: naming the option and the bad item.
    """
    out: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(
                f"{option} {item!r} is not of the form NAME=VALUE",
                hint=f"e.g. {option} student=local:smollm2-135m",
            )
        out[key.strip()] = value
    return out


def check_output_parent(path: Path | None, *, option: str) -> None:
    """Fail early when the directory of an output file does not exist.

    Prefer :func:`check_output_file`, which also checks what the path itself is.

    Raises:
        UsageError: naming the option and the directory.
    """
    if path is not None and not path.parent.is_dir():
        raise UsageError(
            f"cannot write {option} {path}: directory {str(path.parent)!r} does not exist",
            hint=f"create the directory or pick another {option} path",
        )


def file_kind(mode: int) -> str:
    """:func:`sgde.planfile.files.file_kind`, imported on use (``sgde --help`` stays light)."""
    from sgde.planfile.files import file_kind as kind

    return kind(mode)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.abspath(a) == os.path.abspath(b)


def _write_failure(option: str, path: Path) -> Callable[[str, str], UsageError]:
    """The one-line error of an output path that cannot be written: ``fail(reason, hint)``."""

    def fail(reason: str, hint: str) -> UsageError:
        return UsageError(f"cannot write {option} {path}: {reason}", hint=hint)

    return fail


def check_output_file(
    path: Path | None, *, option: str, inputs: Sequence[Path | None] = ()
) -> None:
    """Fail early, with one line naming the path, when an output file cannot be written.

    Runs can take long; a bad output path should not surface only when the result is
    written at the end. Refuses a directory, a device, FIFO or socket (``/dev/full``: writes
    would fail; a FIFO would block), a missing or non-directory parent, a path without write
    permission, and the path of one of the command's ``inputs`` (``--trace PLAN.yaml``
    would overwrite the plan).

    Raises:
        UsageError: naming the option, the path and the reason.
    """
    if path is None:
        return
    fail = _write_failure(option, path)

    for source in inputs:
        if source is not None and _same_file(path, source):
            raise fail("it is an input of this command", f"pick another {option} path")
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise fail(f"{str(path.parent)!r} is not a directory", "check the path") from None
    except OSError as exc:
        raise fail(exc.strerror or str(exc), "check the path") from None
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise fail(f"it is {file_kind(info.st_mode)}", f"give {option} the path of a file")
        if not os.access(path, os.W_OK):
            raise fail("permission denied", "pick a path you can write to")
        return
    parent = path.parent
    if not parent.exists():
        raise fail(
            f"directory {str(parent)!r} does not exist",
            f"create the directory or pick another {option} path",
        )
    if not parent.is_dir():
        raise fail(f"{str(parent)!r} is not a directory", "check the path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"permission denied in {str(parent)!r}", "pick a directory you can write to")


def check_output_dir(path: Path | None, *, option: str) -> None:
    """Fail early when an output directory cannot be created or written.

    The directory may not exist yet (it is created with its parents); then the nearest
    existing ancestor must be a writable directory.

    Raises:
        UsageError: naming the option, the path and the reason.
    """
    if path is None:
        return
    fail = _write_failure(option, path)

    probe = path
    while True:
        try:
            info = probe.stat()
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                raise fail("no existing parent directory", "check the path") from None
            probe = probe.parent
        except OSError as exc:
            raise fail(exc.strerror or str(exc), "check the path") from None
    if not stat.S_ISDIR(info.st_mode):
        what = "it" if probe == path else repr(str(probe))
        kind = "a file" if stat.S_ISREG(info.st_mode) else file_kind(info.st_mode)
        raise fail(
            f"{what} is {kind}, not a directory",
            f"give {option} a directory path",
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise fail(f"permission denied in {str(probe)!r}", "pick a directory you can write to")


def check_prices_file(path: Path | None) -> None:
    """Read a ``--prices`` file up front: a bad file fails before any model loads.

    Raises:
        UsageError: the file is missing, not a regular file, not YAML or not prices.
    """
    if path is not None:
        from sgde.models.usage import load_prices_file

        load_prices_file(path)


def check_resumable(path: Path | None, *, resume: bool, inputs: Sequence[Path | None]) -> None:
    """Check a per-row ``--results`` file up front (``sgde eval``, ``sgde run --dataset``).

    Raises:
        UsageError: ``--resume`` without a results file, or a path that cannot be written.
    """
    if resume and path is None:
        raise UsageError(
            "--resume needs the results file of the run to resume",
            hint="pass the same --results FILE (or --trace FILE) as that run",
        )
    check_output_file(path, option="--results", inputs=inputs)
    if resume and path is not None and not path.exists():
        err_console.print(
            f"[yellow]warning:[/] nothing to resume: {escape(str(path))} does not exist; "
            "running every row",
            highlight=False,
        )


def report_incomplete(n_errors: int, n: int, kinds: dict[str, int], results: Path | None) -> None:
    """Say on stderr that rows could not run, and how to finish them (exit status 3)."""
    what = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
    print_error(f"{n_errors} of {n} rows could not run ({what}); they are not counted as wrong")
    if results is not None:
        hint = (
            f"the finished rows are in {results}: fix the cause, then rerun the same "
            "command with --resume to run the rest"
        )
    else:
        hint = "pass --results FILE (or --trace FILE) to keep finished rows and --resume later"
    err_console.print(f"  hint: {escape(hint)}", highlight=False)


class OutputFile:
    """A text file written as a command runs (traces, results): I/O errors name the file.

    ``with OutputFile(path, option="--trace") as fh: fh.write(...)``; any ``OSError`` while
    opening, writing, flushing or closing (a full disk, ``EIO``) becomes one
    :class:`UsageError` naming the option and the path instead of a traceback.
    """

    def __init__(self, path: Path, *, option: str, mode: str = "w") -> None:
        self.path = path
        self.option = option
        self._mode = mode
        self._fh: IO[str] | None = None

    def _error(self, exc: OSError) -> UsageError:
        return UsageError(
            f"cannot write {self.option} {self.path}: {exc.strerror or exc}",
            hint="check the free space and permissions of that path",
        )

    def __enter__(self) -> OutputFile:
        try:
            self._fh = open(self.path, self._mode, encoding="utf-8")
        except OSError as exc:
            raise self._error(exc) from None
        return self

    def write(self, text: str) -> None:
        """Write ``text``."""
        assert self._fh is not None, "use OutputFile as a context manager"
        try:
            self._fh.write(text)
        except OSError as exc:
            raise self._error(exc) from None

    def flush(self) -> None:
        """Flush buffered text to the file."""
        if self._fh is not None:
            try:
                self._fh.flush()
            except OSError as exc:
                raise self._error(exc) from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.close()
        except OSError as close_exc:
            if exc is None:
                raise self._error(close_exc) from None


def item_progress(
    description: str = "{task.description}",
    *extra: ProgressColumn,
    console: Console | None = None,
    **options: Any,
) -> Progress:
    """The progress bar of every sgde command: text, bar, ``done/total``, elapsed time.

    Args:
        description: The first column's text (rich markup and ``{task...}`` fields).
        *extra: Columns after the elapsed time (e.g. a failure count).
        console: Where to draw (default: stderr, so stdout stays machine-readable).
        **options: Other :class:`rich.progress.Progress` options (``transient``, ``disable``).
    """
    # Imported here: rich.progress is not needed for ``sgde --help``.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
        console=console if console is not None else err_console,
        **options,
    )
