"""Escape corpus: every attack is contained with the policy on and with it off.

Each attack runs twice:

* through ``SandboxPool.call`` — the whole stack: the policy must refuse it with the expected
  rule, or (for code the policy accepts) the run time must stop it with an expected rule;
* through a pool whose only defence is the OS isolation: no policy (``_call_unchecked``), no
  Python-level layers (real builtins and imports, no audit hook), and ``os``, ``socket``,
  ``ctypes``, ``signal`` … preloaded so attacks can make raw system calls.

After every attack, in both modes, the host is checked: the outcome (result or error text)
leaks no secret (the parent's environment, a canary file, a 0600 file, ``/etc/passwd``); the
host directory and ``/tmp`` are unchanged; a TCP and a UDP listener on 127.0.0.1 received
nothing; a sentinel process (same uid) is alive and not stopped; every worker survived; and
the next calls get their own, correct answers. Pairs of different code check that nothing
one call leaves behind is visible to the next. The corpus runs as root and, in CI, as an
unprivileged user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sgde.errors import SandboxError
from sgde.runtime.sandbox import SandboxLimits, SandboxPool
from sgde.runtime.sandbox.policy import check_source

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONTAINED = frozenset({"runtime-error", "forbidden-operation"})
EXHAUSTED = frozenset({"timeout", "cpu-limit", "memory-limit", "worker-crashed"})
SECRET = "sgde-secret-" + secrets.token_hex(8)
CANARY = "canary-" + secrets.token_hex(8)
PRIVATE = "private-" + secrets.token_hex(8)
MARKER = "sgde-marker-" + secrets.token_hex(8)
PRELOAD = ("os", "socket", "ctypes", "signal", "errno", "mmap", "struct", "threading",
           "subprocess", "resource", "gc", "time", "builtins", "weakref")  # fmt: skip
LIMITS = SandboxLimits(cpu_seconds=1, wall_timeout_s=3.0, memory_mb=256)

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
    runtime: frozenset[str] | None  # rules that stop it on the full stack (policy None)
    takes: str | None = None  # parameter that receives the host's paths, ports and pids
    bounded: frozenset[str] | None = None  # rules that must end it under isolation alone


def attack(name: str, code: str, policy: str | None, runtime: set[str] | None) -> Attack:
    exhausting = runtime is not None and runtime <= EXHAUSTED | {"output-too-large"}
    return Attack(
        name,
        code,
        policy,
        frozenset(runtime) if runtime is not None else None,
        bounded=frozenset(runtime) if exhausting and runtime else None,
    )


REPRODUCER = """\\
U = "_" + "_"
def ga(obj, name):                      # getattr by a computed string
    T = type(int)                       # the sandbox's type() returns the real `type`
    M = T("M", (T,), {U+"instancecheck"+U: lambda c, o: True})
    C = M("C", (), {U+"match_args"+U: (name,)})
    match obj:
        case C(v):                      # class pattern: isinstance via the metaclass, then getattr
            return v
def run(x):
    B = ga(print, U+"self"+U)           # the real builtins module
    imp = ga(run, U+"globals"+U)[U+"builtins"+U][U+"import"+U]
    runner = ga(imp, U+"closure"+U)[0].cell_contents
    B.setattr(runner.guard, "locked", False)   # the audit hook becomes a no-op
    os = B.getattr(B, U+"import"+U)("os"); os.close(0)
    return {"passwd": B.open("/etc/passwd").read()[:64]}
"""

HOLES = [
    Attack("issue-reproducer", REPRODUCER, "class-creation", CONTAINED, takes="x"),
    attack("type-of-class-metaclass", "def run():\n    T = type(int)\n"
           "    return str(T('X', (), {}))", "class-creation", CONTAINED),
    attack("type-object-passed-around", "def run():\n    t = [type][0]\n"
           "    return str(t('X', (), {}))", "class-creation", CONTAINED),
    attack("match-str-format-keyword", "def run():\n    match 'x':\n"
           "        case str(format=f):\n            return repr(f)", "match-pattern", None),
    attack("match-args-user-class", "def run():\n    T = type(int)\n"
           "    C = T('C', (), {'_' + '_match_args_' + '_': ('real',)})\n    match 1:\n"
           "        case C(v):\n            return v", "class-creation", CONTAINED),
    attack("match-keyword-code-cache", "def run():\n    match run:\n"
           "        case object(co_consts=c):\n            return repr(c)", "match-pattern", None),
    attack("dunder-built-from-pieces", "def run(x=1):\n    U = '_' + '_'\n"
           "    return ('{0.' + U + 'class' + U + '}').format(x)", "format-string", None),
    attack("dunder-piece-constant", "def run(x=1):\n    name = '__cla' + 'ss__'\n"
           "    return name", "dunder-access", None),
    attack("decorator-runs-at-import", "def deco(f):\n    open('TARGET', 'w')\n    return f\n"
           "@deco\ndef run():\n    return 1", "import-time-code", CONTAINED),
    attack("default-argument-runs-at-import", "def evil():\n    while True:\n        pass\n"
           "def run(x=evil()):\n    return x", "import-time-code", EXHAUSTED),
    attack("annotation-runs-at-import", "def evil():\n    return open('TARGET', 'w')\n"
           "def run(x: evil() = 1):\n    return x", "import-time-code", CONTAINED),
]  # fmt: skip


OLD_ATTACKS = [
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

OS = (
    "import os, sys, socket, ctypes, signal, errno\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "SYS = {'ptrace': 101, 'process_vm_readv': 310, 'process_vm_writev': 311, 'mount': 165,\n"
    "       'umount2': 166, 'pivot_root': 155, 'unshare': 272, 'setns': 308, 'keyctl': 250,\n"
    "       'add_key': 248, 'bpf': 321, 'perf_event_open': 298, 'userfaultfd': 323,\n"
    "       'io_uring_setup': 425, 'personality': 135, 'kill': 62, 'tgkill': 234, 'tkill': 200,\n"
    "       'pidfd_open': 434, 'pidfd_send_signal': 424, 'clone': 56, 'clone3': 435,\n"
    "       'fork': 57, 'vfork': 58, 'execve': 59, 'chroot': 161, 'reboot': 169,\n"
    "       'sethostname': 170, 'socket': 41, 'setpriority': 141, 'prlimit64': 302,\n"
    "       'open_by_handle_at': 304, 'init_module': 175, 'kexec_load': 246, 'ioctl': 16,\n"
    "       'swapoff': 168, 'acct': 163, 'settimeofday': 164, 'syslog': 103,\n"
    "       'sched_setaffinity': 203, 'capset': 126, 'memfd_create': 319,\n"
    "       'rt_sigqueueinfo': 129, 'setsid': 112, 'setpgid': 109} \\\n"
    "    if os.uname().machine == 'x86_64' else {}\n"
    "def sc(name, *args):\n"
    "    if name not in SYS:\n"
    "        return 'n/a'\n"
    "    r = libc.syscall(SYS[name], *args)\n"
    "    return [r, ctypes.get_errno()]\n"
    "def attempt(f, *a):\n"
    "    try:\n"
    "        return repr(f(*a))[:300]\n"
    "    except BaseException as e:\n"
    "        return type(e).__name__ + ': ' + str(e)[:200]\n"
)


def os_attack(name: str, body: str, bounded: set[str] | None = None) -> Attack:
    """An attack using the OS directly (the policy refuses its imports; isolation alone
    must contain it). ``body`` is the body of ``run(p)``; ``p`` holds the host's paths,
    ports and pids."""
    code = OS + "def run(p):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return Attack(
        name,
        code,
        "import-not-allowed",
        CONTAINED | EXHAUSTED,
        "p",
        frozenset(bounded) if bounded else None,
    )


OS_ATTACKS = [
    # -- reading outside the view --------------------------------------------------------
    os_attack("read-etc-passwd", "return attempt(lambda: open('/etc/passwd').read())"),
    os_attack("read-canary-absolute", "return attempt(lambda: open(p['canary']).read())"),
    os_attack("read-user-0600-file", "return attempt(lambda: open(p['private']).read())"),
    os_attack(
        "read-proc-self-environ", "return attempt(lambda: open('/proc/self/environ', 'rb').read())"
    ),
    os_attack(
        "read-proc-parent-environ",
        "return [attempt(lambda: open(f'/proc/{pid}/environ', 'rb').read())\n"
        "        for pid in (os.getppid(), p['parent'], 1)]",
    ),
    os_attack("read-proc-mounts", "return attempt(lambda: open('/proc/self/mountinfo').read())"),
    os_attack("list-root", "return attempt(os.listdir, '/')"),
    os_attack("list-tmp", "return attempt(os.listdir, '/tmp')"),
    os_attack("list-host-dir", "return attempt(os.listdir, p['host'])"),
    os_attack(
        "walk-parent-dirs",
        "out = []\nfor d in ('..', '../..', '/..', '/../../tmp'):\n"
        "    out.append(attempt(os.listdir, d))\nreturn out",
    ),
    os_attack("os-open-rdonly", "return attempt(lambda: os.read(os.open(p['canary'], 0), 100))"),
    os_attack("stat-canary", "return attempt(lambda: os.stat(p['canary']).st_size)"),
    os_attack("readlink-proc-exe", "return attempt(os.readlink, '/proc/self/exe')"),
    os_attack("read-root-home", "return attempt(os.listdir, '/root')"),
    os_attack("read-etc-shadow", "return attempt(lambda: open('/etc/shadow').read())"),
    os_attack("read-sys-class", "return attempt(os.listdir, '/sys/class/net')"),
    os_attack("read-dev-mem", "return attempt(lambda: open('/dev/mem', 'rb').read(16))"),
    os_attack(
        "openat-raw-syscall", "return [libc.open(p['canary'].encode(), 0), ctypes.get_errno()]"
    ),
    os_attack("open-by-handle", "return sc('open_by_handle_at', -100, 0, 0)"),
    os_attack(
        "scan-fds-for-host-files",
        "out = []\nfor fd in range(64):\n"
        "    out.append(attempt(os.readlink, f'/proc/self/fd/{fd}'))\n"
        "    out.append(attempt(lambda: os.pread(fd, 64, 0)))\nreturn out",
    ),
    # -- writing to the host -------------------------------------------------------------
    os_attack(
        "create-file-in-host-dir", "return attempt(lambda: open(p['target'], 'w').write('x'))"
    ),
    os_attack(
        "create-file-o-creat",
        "return attempt(lambda: os.open(p['target'], os.O_CREAT | os.O_WRONLY, 0o666))",
    ),
    os_attack("truncate-canary", "return attempt(lambda: open(p['canary'], 'w'))"),
    os_attack("append-canary", "return attempt(lambda: open(p['canary'], 'a').write('x'))"),
    os_attack("remove-canary", "return attempt(os.remove, p['canary'])"),
    os_attack("rename-canary", "return attempt(os.rename, p['canary'], p['target'])"),
    os_attack("chmod-canary", "return attempt(os.chmod, p['canary'], 0)"),
    os_attack("utime-canary", "return attempt(os.utime, p['canary'], (0, 0))"),
    os_attack("mkdir-host", "return attempt(os.mkdir, p['target'])"),
    os_attack("symlink-host", "return attempt(os.symlink, '/etc/passwd', p['target'])"),
    os_attack("hardlink-host", "return attempt(os.link, p['canary'], p['target'])"),
    os_attack("mkfifo-host", "return attempt(os.mkfifo, p['target'])"),
    os_attack("write-tmp", "return attempt(lambda: open('/tmp/sgde-pwned', 'w').write('x'))"),
    os_attack("write-dev-shm", "return attempt(lambda: open('/dev/shm/sgde-pwned', 'w'))"),
    os_attack("write-root-of-view", "return attempt(lambda: open('/pwned', 'w'))"),
    os_attack("mkdir-root-of-view", "return attempt(os.mkdir, '/pwned')"),
    os_attack(
        "memfd-and-exec",
        "fd = os.memfd_create('x')\nos.write(fd, b'#!/bin/sh\\ntouch ' + p['target'].encode())\n"
        "return attempt(os.execv, f'/proc/self/fd/{fd}', ['x'])",
    ),
    os_attack(
        "unlink-host-dir-contents",
        "return [attempt(os.unlink, os.path.join(p['host'], n)) for n in ('canary.txt',)]",
    ),
    # -- network -------------------------------------------------------------------------
    os_attack(
        "tcp-connect-listener",
        "s = socket.socket()\ns.settimeout(1)\ns.connect(('127.0.0.1', p['port']))\n"
        "return s.send(b'pwned')",
    ),
    os_attack(
        "tcp-connect-attempt",
        "return attempt(lambda: socket.create_connection(('127.0.0.1', p['port']), 1))",
    ),
    os_attack(
        "udp-sendto-listener",
        "return attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
        ".sendto(b'pwned', ('127.0.0.1', p['uport'])))",
    ),
    os_attack("raw-socket-syscall", "return [sc('socket', 2, 1, 0), libc.socket(2, 1, 0)]"),
    os_attack(
        "unix-socket-connect",
        "return attempt(lambda: socket.socket(socket.AF_UNIX).connect('/run/dbus/"
        "system_bus_socket'))",
    ),
    os_attack(
        "netlink-socket",
        "return attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))",
    ),
    os_attack("socketpair", "return attempt(socket.socketpair)"),
    os_attack(
        "ipv6-connect", "return attempt(lambda: socket.create_connection(('::1', p['port']), 1))"
    ),
    os_attack("dns-lookup", "return attempt(socket.getaddrinfo, 'localhost', 80)"),
    os_attack("list-interfaces", "return attempt(socket.if_nameindex)"),
    # -- processes and signals -----------------------------------------------------------
    os_attack("kill-sentinel", "return attempt(os.kill, p['sentinel'], signal.SIGKILL)"),
    os_attack("kill-parent-pid", "return attempt(os.kill, p['parent'], signal.SIGKILL)"),
    os_attack("kill-ppid", "return attempt(os.kill, os.getppid(), signal.SIGKILL)"),
    os_attack("kill-everyone", "return attempt(os.kill, -1, signal.SIGKILL)"),
    os_attack("kill-pid-1", "return attempt(os.kill, 1, signal.SIGKILL)"),
    os_attack("killpg-own-group", "return attempt(os.killpg, 0, signal.SIGKILL)"),
    os_attack(
        "kill-raw-syscall",
        "return [sc('kill', p['sentinel'], 9), sc('kill', -1, 9), sc('tkill', 1, 9),\n"
        "        sc('tgkill', 1, 1, 9), sc('rt_sigqueueinfo', 1, 9, 0)]",
    ),
    os_attack(
        "pidfd-signal",
        "return [sc('pidfd_open', p['sentinel'], 0), sc('pidfd_open', 1, 0),\n"
        "        sc('pidfd_send_signal', 3, 9, 0, 0)]",
    ),
    os_attack("stop-sentinel", "return attempt(os.kill, p['sentinel'], signal.SIGSTOP)"),
    os_attack("fork", "return attempt(os.fork)"),
    os_attack(
        "fork-bomb",
        "n = 0\nfor _ in range(1000):\n    try:\n        os.fork()\n        n += 1\n"
        "    except OSError:\n        break\nreturn n",
    ),
    os_attack("raw-clone-vfork", "return [sc('fork'), sc('vfork'), sc('clone', 17, 0, 0, 0, 0)]"),
    os_attack("clone3-raw", "return sc('clone3', 0, 0)"),
    os_attack("posix-spawn", "return attempt(os.posix_spawn, '/bin/sh', ['sh'], {})"),
    os_attack("os-system", "return attempt(os.system, 'touch ' + p['target'])"),
    os_attack("execv", "return attempt(os.execv, '/bin/sh', ['sh', '-c', 'touch ' + p['target']])"),
    os_attack(
        "thread-start",
        "import threading\nt = threading.Thread(target=lambda: None)\nreturn attempt(t.start)",
    ),
    os_attack(
        "ptrace-parent",
        "return [sc('ptrace', 16, p['parent'], 0, 0), sc('ptrace', 16, 1, 0, 0),\n"
        "        sc('ptrace', 0, 0, 0, 0)]",
    ),
    os_attack("process-vm-readv", "return sc('process_vm_readv', p['parent'], 0, 0, 0, 0, 0)"),
    os_attack("setsid-and-setpgid", "return [sc('setsid'), sc('setpgid', 0, 0)]"),
    os_attack(
        "setpriority-others", "return [sc('setpriority', 0, 1, 19), sc('setpriority', 2, 0, 19)]"
    ),
    os_attack("prlimit-parent", "return sc('prlimit64', 1, 7, 0, 0)"),
    os_attack("sched-setaffinity-pid1", "return sc('sched_setaffinity', 1, 8, 0)"),
    # -- the kernel and the machine ------------------------------------------------------
    os_attack(
        "mount-proc", "return [libc.mount(b'proc', b'/', b'proc', 0, None), ctypes.get_errno()]"
    ),
    os_attack("mount-raw", "return sc('mount', 0, 0, 0, 0, 0)"),
    os_attack("umount-root", "return sc('umount2', 0, 2)"),
    os_attack("unshare-user", "return [libc.unshare(0x10000000), ctypes.get_errno()]"),
    os_attack("unshare-raw-all", "return sc('unshare', 0x7e020000)"),
    os_attack("setns", "return sc('setns', 0, 0)"),
    os_attack("chroot", "return [libc.chroot(b'/'), ctypes.get_errno()]"),
    os_attack("pivot-root", "return sc('pivot_root', 0, 0)"),
    os_attack("setuid-root", "return [attempt(os.setuid, 0), attempt(os.setgid, 0)]"),
    os_attack("capset", "return sc('capset', 0, 0)"),
    os_attack("keyctl", "return [sc('keyctl', 0, 0), sc('add_key', 0, 0, 0, 0, 0)]"),
    os_attack("bpf", "return sc('bpf', 0, 0, 0)"),
    os_attack("perf-event-open", "return sc('perf_event_open', 0, 0, -1, -1, 0)"),
    os_attack("userfaultfd", "return sc('userfaultfd', 0)"),
    os_attack("io-uring", "return sc('io_uring_setup', 1, 0)"),
    os_attack("personality", "return sc('personality', 0x0040000)"),
    os_attack("reboot", "return sc('reboot', 0, 0, 0, 0)"),
    os_attack("sethostname", "return [libc.sethostname(b'pwned', 5), socket.gethostname()]"),
    os_attack("init-module", "return [sc('init_module', 0, 0, 0), sc('kexec_load', 0, 0, 0, 0)]"),
    os_attack(
        "swapoff-acct-time",
        "return [sc('swapoff', 0), sc('acct', 0), sc('settimeofday', 0, 0), sc('syslog', 3, 0, 0)]",
    ),
    os_attack(
        "tiocsti-terminal-injection",
        "c = ctypes.c_char(b'x')\n"
        "return [sc('ioctl', fd, 0x5412, ctypes.addressof(c)) for fd in (0, 1, 2)]",
    ),
    os_attack(
        "foreign-abi-int80-kill",
        "import mmap, struct\nif os.uname().machine != 'x86_64':\n    return 'n/a'\n"
        "code = (b'\\xb8\\x25\\x00\\x00\\x00\\xbb' + struct.pack('<I', p['sentinel'])\n"
        "        + b'\\xb9\\x09\\x00\\x00\\x00\\xcd\\x80\\xc3')\n"
        "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "m.write(code)\naddress = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
        "return ctypes.CFUNCTYPE(ctypes.c_int)(address)()",
    ),
    os_attack(
        "x32-abi-kill",
        "return [libc.syscall(0x40000000 | 62, p['sentinel'], 9), ctypes.get_errno()]",
    ),
    # -- the result channel --------------------------------------------------------------
    os_attack(
        "forge-frame-on-every-fd",
        "import json, struct\nbody = json.dumps({'ok': True, 'result': 'forged'}).encode()\n"
        "frame = struct.pack('>IQ', len(body), 999) + body\nout = []\n"
        "for fd in range(3, 64):\n    out.append(attempt(os.write, fd, frame))\nreturn out",
    ),
    os_attack(
        "forge-frame-stdout-stderr",
        "import json, struct\nbody = json.dumps({'ok': True, 'result': 'forged'}).encode()\n"
        "frame = struct.pack('>IQ', len(body), 1) + body\n"
        "return [attempt(os.write, fd, frame) for fd in (0, 1, 2)]",
    ),
    os_attack("close-all-fds", "os.closerange(0, 1024)\nreturn 'closed'"),
    os_attack("dup-over-stdout", "return [attempt(os.dup2, fd, 1) for fd in range(3, 10)]"),
    # -- environment ---------------------------------------------------------------------
    os_attack("environ", "return dict(os.environ)"),
    os_attack("getenv-secret", "return os.getenv('SGDE_ESCAPE_SECRET')"),
    os_attack("ctypes-environ", "return attempt(lambda: ctypes.c_char_p.in_dll(libc, 'environ'))"),
    os_attack(
        "identity",
        "return [os.getuid(), os.geteuid(), os.getgid(), os.getgroups(),"
        " os.getpid(), os.getppid(), socket.gethostname()]",
    ),
    # -- resources -----------------------------------------------------------------------
    os_attack(
        "ignore-cpu-timer",
        "signal.signal(signal.SIGPROF, signal.SIG_IGN)\nsignal.setitimer(signal.ITIMER_PROF, 0)\n"
        "while True:\n    pass",
        bounded={"cpu-limit", "timeout"},
    ),
    os_attack(
        "raise-rlimits",
        "import resource\nout = []\nfor r in (resource.RLIMIT_CPU, resource.RLIMIT_AS, "
        "resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE):\n"
        "    out.append(attempt(resource.setrlimit, r, (-1, -1)))\nreturn out",
    ),
    os_attack(
        "deep-result",
        "x = []\nfor _ in range(100_000):\n    x = [x]\nreturn x",
        bounded={"not-json"},
    ),
    os_attack(
        "huge-frame", "return 'x' * 50_000_000", bounded={"output-too-large", "memory-limit"}
    ),
]


ATTACKS = [*HOLES, *OLD_ATTACKS, *OS_ATTACKS]


@dataclass(frozen=True)
class Pair:
    """Code that tries to leave state behind, then different code that looks for it."""

    name: str
    setter: str
    reader: str
    expected: Any  # the reader's result in a fresh process, or a rule set it must raise


PAIRS = [
    Pair("builtins-patched", "import builtins\ndef run():\n    builtins.len = lambda x: 42\n"
         "    return 1", "def run():\n    return len([1])", 1),
    Pair("sys-modules-replaced", "import sys, json\ndef run():\n"
         "    sys.modules['json'] = None\n    return 1",
         "import json\ndef run():\n    return json.dumps(1)", "1"),
    Pair("json-dumps-patched", "import json\ndef run():\n"
         "    json.dumps = lambda *a, **k: 'forged'\n    return 1",
         "import json\ndef run():\n    return json.dumps([1])", "[1]"),
    Pair("function-code-replaced", "import json\ndef run():\n"
         "    json.dumps.__code__ = (lambda *a, **k: 'forged').__code__\n    return 1",
         "import json\ndef run():\n    return json.dumps([1])", "[1]"),
    Pair("abc-registry", "import collections.abc\ndef run():\n"
         "    collections.abc.Sequence.register(dict)\n    return 1",
         "import collections.abc\ndef run():\n"
         "    return isinstance({}, collections.abc.Sequence)", False),
    Pair("counter-method-patched", "import collections\ndef run():\n"
         "    collections.Counter.most_common = lambda self, n=None: 'forged'\n    return 1",
         "from collections import Counter\ndef run():\n    return Counter('aab').most_common(1)",
         [["a", 2]]),
    Pair("math-constant", "import math\ndef run():\n    math.pi = 3\n    return 1",
         "import math\ndef run():\n    return math.pi > 3.14", True),
    Pair("string-constant", "import string\ndef run():\n    string.digits = 'x'\n    return 1",
         "import string\ndef run():\n    return string.digits", "0123456789"),
    Pair("decimal-context", "import decimal\ndef run():\n    decimal.getcontext().prec = 3\n"
         "    decimal.DefaultContext.prec = 3\n    return 1",
         "import decimal\ndef run():\n    return str(decimal.Decimal(1) / decimal.Decimal(3))",
         "0." + "3" * 28),
    Pair("recursion-limit", "import sys\ndef run():\n    sys.setrecursionlimit(60)\n    return 1",
         "def run():\n    def f(n):\n        return 0 if n == 0 else 1 + f(n - 1)\n"
         "    return f(400)", 400),
    Pair("cpu-timer-ignored", "import signal\ndef run():\n"
         "    signal.signal(signal.SIGPROF, signal.SIG_IGN)\n    return 1",
         "def run():\n    while True:\n        pass", {"cpu-limit", "timeout"}),
    Pair("finaliser-burns-next-call", "import gc\ndef run():\n"
         "    class Burn:\n        def __del__(self):\n"
         "            while True:\n                pass\n"
         "    b = Burn()\n    b.me = b\n    gc.disable()\n    return 1",
         "def run():\n    total = 0\n    for i in range(2_000_000):\n        total += i\n"
         "    return total", sum(range(2_000_000))),
    Pair("file-left-behind", "def run():\n    open('/tmp/sgde-state', 'w').write('forged')\n"
         "    return 1", "def run():\n    return open('/tmp/sgde-state').read()",
         {"runtime-error", "forbidden-operation"}),
    Pair("environment-variable", "import os\ndef run():\n    os.environ['SGDE_STATE'] = 'x'\n"
         "    os.putenv('SGDE_STATE', 'x')\n    return 1",
         "import os\ndef run():\n    return os.environ.get('SGDE_STATE')", None),
    Pair("global-of-other-code", "import json\ndef run():\n    json.STATE = 'forged'\n"
         "    return 1", "import json\ndef run():\n    return json.STATE",
         {"runtime-error"}),
]  # fmt: skip


# -- host fixtures ------------------------------------------------------------------------


@dataclass
class Host:
    directory: Path
    canary: Path
    private: Path
    listener: Listener
    sentinel: subprocess.Popen[bytes]
    marker: Path

    def params(self) -> dict[str, Any]:
        return {
            "host": str(self.directory),
            "canary": str(self.canary),
            "private": str(self.private),
            "target": str(self.directory / "pwned"),
            "port": self.listener.tcp_port,
            "uport": self.listener.udp_port,
            "sentinel": self.sentinel.pid,
            "parent": os.getpid(),
        }

    def snapshot(self) -> list[tuple[str, int, int, bytes]]:
        return [
            (p.name, p.stat().st_mode, p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in sorted(self.directory.iterdir())
        ]


class Listener:
    """A TCP and a UDP socket on 127.0.0.1 that count what reaches them."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp_port = self.udp.getsockname()[1]
        self.received: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._accept, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                continue
            self.received.append(f"tcp connection from {peer}")
            conn.close()

    def _receive(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except OSError:
                continue
            self.received.append(f"udp {data!r} from {peer}")

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=2)
        self.tcp.close()
        self.udp.close()


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    directory = Path(tempfile.mkdtemp(prefix="sgde-escape-"))
    directory.chmod(0o777)
    canary = directory / "canary.txt"
    canary.write_text(CANARY)
    canary.chmod(0o666)
    private = directory / "private.txt"
    private.write_text(PRIVATE)
    private.chmod(0o600)
    marker = Path(tempfile.gettempdir()) / MARKER
    marker.mkdir()
    (directory / MARKER).mkdir()
    listener = Listener()
    sentinel = subprocess.Popen(["sleep", "600"], start_new_session=True)
    os.environ["SGDE_ESCAPE_SECRET"] = SECRET
    try:
        yield Host(directory, canary, private, listener, sentinel, marker)
    finally:
        os.environ.pop("SGDE_ESCAPE_SECRET", None)
        sentinel.kill()
        sentinel.wait()
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(marker, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def full(host: Host) -> AsyncIterator[SandboxPool]:
    """Every layer: policy, Python-level restrictions, OS isolation."""
    async with SandboxPool(workers=2, limits=LIMITS) as pool:
        yield pool


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bare(host: Host) -> AsyncIterator[SandboxPool]:
    """OS isolation alone: no policy (``_call_unchecked``), no Python-level layers."""
    async with SandboxPool(
        workers=2, limits=LIMITS, _python_layers=False, _preload=PRELOAD
    ) as pool:
        yield pool


def leaks(text: str) -> list[str]:
    markers = (SECRET, CANARY, PRIVATE, MARKER, "root:x:0:0", "forged")
    return [m for m in markers if m in text]


def stopped_or_dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("T", "t", "Z", "X")


async def run_attack(pool: SandboxPool, case: Attack, host: Host, *, policy: bool) -> str:
    """Run one attack; return the outcome text (result JSON or error)."""
    code = case.code.replace("TARGET", str(host.directory / "pwned"))
    kwargs = {case.takes: host.params()} if case.takes else {}
    try:
        if policy:
            result = await pool.call(code, kwargs)
        else:
            result = await pool._call_unchecked(code, kwargs)
    except SandboxError as exc:
        return f"error {exc.rule}: {exc}"
    return "result " + json.dumps(result)


async def assert_contained(pool: SandboxPool, host: Host, before: list[Any], pids: list[int],
                           outcome: str) -> None:  # fmt: skip
    assert not leaks(outcome), outcome[:2000]
    assert host.snapshot() == before
    for path in ("/tmp/sgde-pwned", "/dev/shm/sgde-pwned", "/tmp/sgde-state", "/pwned"):
        assert not os.path.exists(path), path
    assert host.listener.received == []
    assert not stopped_or_dead(host.sentinel.pid)
    assert pool.worker_pids == pids, "a worker died"
    probes = await asyncio.gather(
        *(pool.call("def run(i):\n    return {'probe': i}", {"i": i}) for i in range(3))
    )
    assert probes == [{"probe": i} for i in range(3)]


async def test_corpus_size() -> None:
    assert len(ATTACKS) >= 100
    assert len({a.name for a in ATTACKS} | {p.name for p in PAIRS}) == len(ATTACKS) + len(PAIRS)


@pytest.mark.parametrize("case", ATTACKS, ids=lambda a: a.name)
async def test_attack_with_policy(case: Attack, full: SandboxPool, host: Host) -> None:
    before, pids = host.snapshot(), full.worker_pids
    outcome = await run_attack(full, case, host, policy=True)
    if case.policy is not None:
        code = case.code.replace("TARGET", str(host.directory / "pwned"))
        assert case.policy in {v.rule for v in check_source(code)}
        assert outcome.startswith("error policy:"), outcome[:500]
    else:
        assert case.runtime is not None
        assert outcome.split(":")[0].removeprefix("error ") in case.runtime, outcome[:500]
    await assert_contained(full, host, before, pids, outcome)


@pytest.mark.parametrize("case", ATTACKS, ids=lambda a: a.name)
async def test_attack_with_isolation_alone(case: Attack, bare: SandboxPool, host: Host) -> None:
    before, pids = host.snapshot(), bare.worker_pids
    outcome = await run_attack(bare, case, host, policy=False)
    if case.bounded is not None:
        assert outcome.split(":")[0].removeprefix("error ") in case.bounded, outcome[:500]
    assert len(outcome) < 2_100_000
    await assert_contained(bare, host, before, pids, outcome)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
@pytest.mark.parametrize("layers", ["policy", "isolation-alone"])
async def test_no_state_crosses_calls(
    pair: Pair, layers: str, full: SandboxPool, bare: SandboxPool, host: Host
) -> None:
    pool = full if layers == "policy" else bare
    call = pool._call_unchecked if layers == "isolation-alone" else pool.call
    before, pids = host.snapshot(), pool.worker_pids
    for _ in range(2):  # both workers see the setter
        with contextlib.suppress(SandboxError):
            await call(pair.setter, {})
    if layers == "policy" and check_source(pair.reader):
        return  # the policy refuses the reader itself: nothing to read with
    for _ in range(3):
        try:
            outcome: Any = await call(pair.reader, {})
        except SandboxError as exc:
            outcome = exc.rule
        if isinstance(pair.expected, set):
            assert outcome in pair.expected, outcome
        else:
            assert outcome == pair.expected
    await assert_contained(pool, host, before, pids, json.dumps(outcome))


async def test_isolation_facts(bare: SandboxPool) -> None:
    code = (
        "import os, socket\n"
        "def run():\n"
        "    return {'root': os.listdir('/'), 'uid': os.getuid(), 'pid': os.getpid(),\n"
        "            'ppid': os.getppid(), 'host': socket.gethostname(),\n"
        "            'env': dict(os.environ), 'cwd': os.getcwd()}\n"
    )
    facts = await bare._call_unchecked(code, {})
    assert facts["root"] == []
    assert facts["host"] == "sandbox"
    assert set(facts["env"]) <= {"LC_CTYPE"}  # set by CPython (PEP 538), not inherited
    assert facts["ppid"] == 1  # the zygote is pid 1 of the worker's own pid namespace
    assert facts["uid"] != 0
    if os.geteuid() == 0:
        assert facts["uid"] == 2_000_000_000
    assert facts["cwd"] == "/"


async def test_a_call_cannot_reach_other_calls_pipes(bare: SandboxPool, host: Host) -> None:
    # Another code's call process is kept warm by the worker; the attacker (forked later)
    # must not hold its pipes: no forged request into it, no answer read from it.
    reader = "def run(i):\n    return {'honest': i}\n"
    for i in range(4):
        assert await bare._call_unchecked(reader, {"i": i}) == {"honest": i}
    attacker = (
        "import os, struct, json\n"
        "def run():\n"
        "    body = json.dumps({'ok': True, 'result': 'forged'}).encode()\n"
        "    answer = struct.pack('>QB', len(body), 0) + body\n"
        "    req = json.dumps({'op': 'call', 'code': 'def run(i):\\n    return \"forged\"',\n"
        "                      'entry': 'run', 'kwargs': '{\"i\": 0}'}).encode()\n"
        "    request = struct.pack('>Q', len(req)) + req\n"
        "    opened = []\n"
        "    for fd in range(0, 256):\n"
        "        try:\n"
        "            os.fstat(fd)\n"
        "        except OSError:\n"
        "            continue\n"
        "        opened.append(fd)\n"
        "        try:\n"
        "            os.write(fd, request if fd > 2 else answer)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return opened\n"
    )
    before, pids = host.snapshot(), bare.worker_pids
    outcome = await run_attack(bare, Attack("pipes", attacker, None, None), host, policy=False)
    for i in range(4):
        assert await bare._call_unchecked(reader, {"i": i}) == {"honest": i}
    await assert_contained(bare, host, before, pids, outcome)
