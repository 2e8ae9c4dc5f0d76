"""Escape corpus: every attack is refused by the policy and/or contained at run time.

Each attack is run twice: through ``SandboxPool.call`` (the policy must refuse it with the
expected rule, or — for attacks the policy lets through — the run time must contain it), and
through ``_call_unchecked`` (policy skipped), where the run-time layers alone must contain it.
After each attack the host is checked: the target file in a world-writable directory was not
created, the canary file is unchanged, and no process other than the pool's workers exists.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from sgde.errors import SandboxError
from sgde.runtime.sandbox import SandboxLimits, SandboxPool
from sgde.runtime.sandbox.policy import check_source

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONTAINED = {"runtime-error", "forbidden-operation"}
EXHAUSTED = {"timeout", "cpu-limit", "memory-limit", "worker-crashed"}

FIND_CLASS = """
def find(name):
    todo = [().__class__.__mro__[1]]
    seen = []
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        if cls.__name__ == name:
            return cls
        try:
            todo.extend(cls.__subclasses__())
        except TypeError:
            pass
    return None
"""


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    policy: str | None  # expected policy rule; None when the policy lets it through
    runtime: frozenset[str] | None  # rules that contain it without the policy; None: skip


def attack(name: str, code: str, policy: str | None, runtime: set[str] | None) -> Attack:
    return Attack(name, code, policy, frozenset(runtime) if runtime is not None else None)


ATTACKS = [
    attack("import-os", "import os\ndef run():\n    return os.system('touch TARGET')",
           "import-not-allowed", CONTAINED),
    attack("import-sys", "import sys\ndef run():\n    return sys.modules['os'].getcwd()",
           "import-not-allowed", CONTAINED),
    attack("import-subprocess",
           "def run():\n    import subprocess\n    return subprocess.run(['touch', 'TARGET'])",
           "import-not-allowed", CONTAINED),
    attack("import-socket", "import socket\ndef run():\n    return socket.socket()",
           "import-not-allowed", CONTAINED),
    attack("import-importlib",
           "import importlib\ndef run():\n    return importlib.import_module('os').getcwd()",
           "import-not-allowed", CONTAINED),
    attack("import-ctypes", "import ctypes\ndef run():\n    return ctypes.CDLL(None)",
           "import-not-allowed", CONTAINED),
    attack("import-builtins",
           "import builtins\ndef run():\n    return builtins.open('TARGET', 'w')",
           "import-not-allowed", CONTAINED),
    attack("import-multiprocessing-fork-bomb",
           "import multiprocessing\ndef run():\n    while True:\n"
           "        multiprocessing.Process(target=run).start()",
           "import-not-allowed", CONTAINED),
    attack("import-signal-tampering",
           "import signal\ndef run():\n    signal.signal(signal.SIGPROF, signal.SIG_IGN)\n"
           "    while True:\n        pass",
           "import-not-allowed", CONTAINED),
    attack("dunder-import", "def run():\n    return __import__('os').system('touch TARGET')",
           "dunder-access", CONTAINED),
    attack("submodule-through-allowed", "from json import codecs\ndef run():\n"
           "    return codecs.open('TARGET', 'w')", "import-not-allowed", CONTAINED),
    attack("module-attribute-statistics-sys", "import statistics\ndef run():\n"
           "    return statistics.sys.modules['os'].system('touch TARGET')",
           "forbidden-attribute", CONTAINED),
    attack("read-passwd-json-codecs", "import json\ndef run():\n"
           "    return json.codecs.open('/etc/passwd').read()", "forbidden-attribute", CONTAINED),
    attack("mro-subclasses-os-system", FIND_CLASS + "def run():\n"
           "    return find('_wrap_close').__init__.__globals__['system']('touch TARGET')",
           "dunder-access", CONTAINED),
    attack("mro-subclasses-fork", FIND_CLASS + "def run():\n"
           "    return find('_wrap_close').__init__.__globals__['fork']()",
           "dunder-access", CONTAINED),
    attack("list-class-fileio-write", FIND_CLASS + "def run():\n"
           "    return find('FileIO')('TARGET', 'w').write(b'x')", "dunder-access", CONTAINED),
    attack("subclasses-popen", FIND_CLASS + "def run():\n"
           "    return find('Popen')(['touch', 'TARGET'])", "dunder-access", CONTAINED),
    attack("function-globals-builtins", "import functools\ndef run():\n"
           "    return functools.lru_cache.__globals__['__builtins__']['open']('/etc/passwd')",
           "dunder-access", CONTAINED),
    attack("closure-run-globals", "def run():\n"
           "    return run.__globals__['__builtins__']['__import__']('os')",
           "dunder-access", CONTAINED),
    attack("print-self-builtins-open", "def run():\n    return print.__self__.open('TARGET', 'w')",
           "dunder-access", CONTAINED),
    attack("generator-frame-f-back",
           "def run():\n    box = []\n    def gen():\n        frame = box[0].gi_frame.f_back\n"
           "        yield frame.f_globals['os'].system('touch TARGET')\n"
           "    it = gen()\n    box.append(it)\n    return next(it)",
           "forbidden-attribute", CONTAINED),
    attack("traceback-frame-globals",
           "def run():\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
           "        return e.__traceback__.tb_frame.f_back.f_globals['os'].getcwd()",
           "dunder-access", CONTAINED),
    attack("type-three-args", "def run():\n    return type('X', (dict,), {'get': print})",
           "class-creation", CONTAINED),
    attack("class-subclassing", "class Evil(dict):\n    pass\ndef run():\n    return Evil()",
           "class-creation", CONTAINED),
    attack("getattr-by-string", "def run():\n    return getattr(run, '__glo' + 'bals__')",
           "forbidden-name", CONTAINED),
    attack("open-write", "def run():\n    return open('TARGET', 'w').write('x')",
           "forbidden-name", CONTAINED),
    attack("open-read-passwd", "def run():\n    return open('/etc/passwd').read()",
           "forbidden-name", CONTAINED),
    attack("exec", "def run():\n    exec(\"import os; os.system('touch TARGET')\")",
           "forbidden-name", CONTAINED),
    attack("eval", "def run():\n    return eval(\"__import__('os').getcwd()\")",
           "forbidden-name", CONTAINED),
    attack("compile", "def run():\n    return compile('1', 'f', 'eval')", "forbidden-name",
           CONTAINED),
    attack("json-object-hook-exec", "import json\ndef run():\n"
           "    return json.loads('{\"a\": 1}', object_pairs_hook=exec)", "forbidden-name",
           CONTAINED),
    attack("string-formatter-get-field", "import string\ndef run():\n"
           "    return string.Formatter().get_field('0.__class__', (1,), {})[0]",
           "forbidden-attribute", CONTAINED),
    attack("functools-update-wrapper-setattr", "import functools, json\ndef run(x):\n"
           "    return functools.update_wrapper(json.JSONEncoder, run, assigned=('encode',), "
           "updated=())", "forbidden-attribute", CONTAINED),
    attack("singledispatch-annotation-eval", "import functools\n"
           "def f(x: \"__import__('os').system('touch TARGET')\"):\n    pass\n"
           "def run():\n    return functools.singledispatch(print).register(f)",
           "forbidden-attribute", CONTAINED),
    attack("private-module-state", "import json\ndef run():\n    return json._default_encoder",
           "private-access", CONTAINED),
    attack("format-string-attribute", "def run(x):\n    return '{0.__class__.__mro__}'.format(x)",
           "format-string", None),
    attack("memory-bomb-string", "def run():\n    return 'x' * 10**10", None, {"memory-limit"}),
    attack("memory-bomb-list", "def run():\n    a = []\n    while True:\n"
           "        a.append([0] * 10**6)", None, {"memory-limit"}),
    attack("infinite-loop", "def run():\n    while True:\n        pass", None,
           {"timeout", "cpu-limit"}),
    attack("cpu-bomb-in-c", "def run():\n    return 10 ** (10 ** 8) > 5", None, EXHAUSTED),
    attack("regex-catastrophic-backtracking", "import re\ndef run():\n"
           "    return bool(re.match(r'(a+)+$', 'a' * 64 + 'b'))", None,
           {"timeout", "cpu-limit"}),
    attack("decimal-precision-bomb", "import decimal\ndef run():\n"
           "    with decimal.localcontext(prec=10**6):\n"
           "        return str(decimal.Decimal(2).ln())[:5]", None, EXHAUSTED),
    attack("huge-output", "def run():\n    return 'x' * 2_000_000", None, {"output-too-large"}),
    attack("not-json-set", "def run():\n    return {'a': {1, 2}}", None, {"not-json"}),
    attack("not-json-function", "def run():\n    return run", None, {"not-json"}),
    attack("not-json-nan", "def run():\n    return float('nan')", None, {"not-json"}),
    attack("deep-recursion", "def run(n=0):\n    return run(n + 1)", None, {"runtime-error"}),
    attack("top-level-infinite-loop", "while True:\n    pass\ndef run():\n    return 1",
           "top-level-statement", {"timeout", "cpu-limit"}),
    attack("exception-carrying-object", "def run():\n    raise ValueError(run, 'x' * 10**7)",
           None, {"runtime-error"}),
    attack("match-class-dunder", "def run():\n    match 1:\n        case int(__class__=c):\n"
           "            return c", "dunder-access", {"not-json"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def host() -> Iterator[Path]:
    """A world-writable directory with a canary file, outside the workers' cwd."""
    directory = Path(tempfile.mkdtemp(prefix="sgde-escape-", dir="/tmp"))
    directory.chmod(0o777)
    canary = directory / "canary.txt"
    canary.write_text("canary")
    canary.chmod(0o666)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool() -> AsyncIterator[SandboxPool]:
    limits = SandboxLimits(cpu_seconds=1, wall_timeout_s=4.0, memory_mb=256)
    async with SandboxPool(workers=2, limits=limits) as p:
        yield p


def children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(entry))
    return found


def zombies() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] == "Z":
                found.add(int(entry))
    return found


async def assert_host_untouched(host: Path, pool: SandboxPool) -> None:
    assert not (host / "pwned").exists()
    assert sorted(p.name for p in host.iterdir()) == ["canary.txt"]
    assert (host / "canary.txt").read_text() == "canary"
    # Replacement workers start in the background; wait until the pool is whole again.
    for _ in range(400):
        if len(pool.worker_pids) == pool.workers and not pool._tasks:
            break
        await asyncio.sleep(0.05)
    assert children() <= set(pool.worker_pids)
    assert not zombies()


async def test_corpus_is_large_enough() -> None:
    assert len(ATTACKS) >= 30
    assert len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("case", ATTACKS, ids=lambda a: a.name)
async def test_attack_through_pool(case: Attack, pool: SandboxPool, host: Path) -> None:
    code = case.code.replace("TARGET", str(host / "pwned"))
    with pytest.raises(SandboxError) as info:
        await pool.call(code, {})
    if case.policy is not None:
        assert case.policy in {v.rule for v in check_source(code)}
        assert info.value.rule.startswith("policy:")
        assert info.value.line is not None or case.policy == "missing-entry"
    else:
        assert check_source(code) == []
        assert case.runtime is not None and info.value.rule in case.runtime, info.value
    await assert_host_untouched(host, pool)


@pytest.mark.parametrize(
    "case", [a for a in ATTACKS if a.runtime is not None], ids=lambda a: a.name
)
async def test_attack_contained_without_policy(case: Attack, pool: SandboxPool, host: Path) -> None:
    code = case.code.replace("TARGET", str(host / "pwned"))
    with pytest.raises(SandboxError) as info:
        await pool._call_unchecked(code, {})
    assert case.runtime is not None and info.value.rule in case.runtime, info.value
    assert len(str(info.value)) < 10_000
    await assert_host_untouched(host, pool)


async def test_pool_still_serves_after_corpus(pool: SandboxPool) -> None:
    assert await pool.call("def run(a):\n    return a * 2", {"a": 21}) == 42
