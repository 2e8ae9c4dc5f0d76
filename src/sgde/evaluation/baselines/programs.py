"""Turn a model's reply into a program for the sandbox (PAL and PoT).

Only text is handled here: the code is parsed (never executed) to pick the code block and
drop top-level statements that are no part of the computation (``print(...)`` calls,
``if __name__ == "__main__":`` blocks, bare expressions). Running happens in
:class:`sgde.runtime.sandbox.SandboxPool`, whose policy checks the code again.
"""

from __future__ import annotations

import ast

from sgde.runtime.parsing import fenced_blocks

__all__ = ["ENTRY", "code_blocks", "pal_program", "pot_program"]

ENTRY = "solution"
"""Entry point called in the sandbox for both PAL and PoT programs."""


def code_blocks(text: str) -> list[str]:
    """Fenced code blocks of a reply, Python-tagged ones first; the whole text if none.

    Args:
        text: A model reply.

    Returns:
        Candidate sources, best first (never empty; may contain an empty string).
    """
    blocks = fenced_blocks(text)
    if not blocks:
        return [text.strip()]
    python = [body for lang, body in blocks if lang in ("python", "py", "python3")]
    other = [body for lang, body in blocks if lang not in ("python", "py", "python3")]
    return [b.strip("\n") for b in python + other]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)


def _is_print(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id in ("print", "input")
    )


def _defines(module: ast.Module, name: str) -> bool:
    return any(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
        for n in module.body
    )


def _assigns(module: ast.Module, name: str) -> bool:
    for node in ast.walk(module):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(target)):
                return True
    return False


def pal_program(text: str) -> str:
    """The PAL program in a reply: the code block defining ``solution()``.

    Top-level statements other than imports, definitions and assignments (prints, calls,
    ``__main__`` guards) are dropped, since only ``solution()`` is called. Code that does not
    parse is returned as written, so the sandbox reports the syntax error.

    Args:
        text: The model's reply.

    Returns:
        Python source expected to define ``solution()``.
    """
    blocks = code_blocks(text)
    for block in blocks:
        module = _parse(block)
        if module is not None and _defines(module, ENTRY):
            keep: list[ast.stmt] = [
                n
                for n in module.body
                if isinstance(
                    n,
                    (
                        ast.Import,
                        ast.ImportFrom,
                        ast.FunctionDef,
                        ast.ClassDef,
                        ast.Assign,
                        ast.AnnAssign,
                    ),
                )
            ]
            return ast.unparse(ast.Module(body=keep, type_ignores=[]))
    return blocks[0]


def pot_program(text: str) -> str:
    """The PoT program in a reply, wrapped as ``def solution(): ...; return ans``.

    The block assigning ``ans`` is chosen (else the first block); top-level ``print`` calls
    and ``__main__`` guards are dropped; the rest becomes the body of ``solution()``, which
    returns ``ans``. Code that does not parse is wrapped as written, so the sandbox reports
    the syntax error.

    Args:
        text: The model's reply.

    Returns:
        Python source defining ``solution()``.
    """
    blocks = code_blocks(text)
    chosen = blocks[0]
    module = None
    for block in blocks:
        parsed = _parse(block)
        if parsed is not None and _assigns(parsed, "ans"):
            chosen, module = block, parsed
            break
    if module is None:
        module = _parse(chosen)
    if module is not None:
        body = [n for n in module.body if not _is_print(n) and not _is_main_guard(n)]
        chosen = ast.unparse(ast.Module(body=body, type_ignores=[])) if body else "pass"
    indented = "\n".join("    " + line if line.strip() else line for line in chosen.splitlines())
    return f"def {ENTRY}():\n{indented or '    pass'}\n    return ans\n"
