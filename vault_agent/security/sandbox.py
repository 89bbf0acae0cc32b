"""Runs one command isolated: bubblewrap namespaces where available, rlimits, a group kill, a scrubbed environment.

With bubblewrap (bwrap) the command sees a new root holding only the system
folders (read-only), a private /tmp, and the granted paths (read-only unless
write is granted; the protected paths inside a write grant are re-mounted
read-only); it has no network unless granted, its own PID namespace (so it
dies with its namespace) and dies with the runtime (--die-with-parent). A
protected path under a writable grant that does not exist yet (schedule.md,
journal/ ...) is held by an empty read-only placeholder while commands run,
so a command cannot create it (vault.placeholders).
Without bwrap the command runs in a fresh temporary HOME with the same
limits, timeout and environment but without namespaces: it can then read
whatever the runtime's user can, which `doctor` warns about.

rlimits (CPU, address space, processes, file size, open files, no core
dumps) are set by util-linux `prlimit` in front of the command, or a tiny
Python exec wrapper where prlimit is missing; subprocess's preexec_fn is
avoided because tool calls run on several threads, where it may deadlock.
"""

from __future__ import annotations

import atexit
import functools
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..vault import placeholders

SYSTEM_RO = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
# /etc pieces programs need to start (the dynamic loader, users, locale, TLS roots), not /etc as a whole.
ETC_RO = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group",
          "/etc/nsswitch.conf", "/etc/localtime", "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates",
          "/etc/pki", "/etc/mime.types", "/etc/hosts", "/etc/gitconfig", "/etc/python3", "/etc/profile")
ETC_NET = ("/etc/resolv.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols")
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_LIVE: set[int] = set()  # process groups started and not yet reaped, killed if the runtime exits
_LIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """Per-call limits; tools.md may lower or raise them under `capabilities.limits`."""

    timeout_s: float = 30.0
    cpu_s: int = 30
    memory_mb: int = 2048
    processes: int = 256
    file_size_mb: int = 64
    open_files: int = 256
    output_bytes: int = 1_000_000  # per stream; the rest is read and dropped


@dataclass
class SandboxResult:
    exit_code: int | None  # None when killed by the timeout
    stdout: bytes
    stderr: bytes
    timed_out: bool
    truncated: bool
    isolated: bool  # True when bubblewrap namespaces were used
    seconds: float


@dataclass(frozen=True)
class Spec:
    """What one command may see: paths (resolved) to mount read-only or writable, network, environment."""

    read: tuple[Path, ...] = ()
    write: tuple[Path, ...] = ()
    # Re-mounted read-only on top of a writable grant; one that does not exist is held by an empty placeholder
    # (vault.placeholders), recorded in the agent folder `agent`.
    read_only_inside: tuple[Path, ...] = ()
    agent: Path | None = None
    cwd: Path | None = None
    network: bool = False
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits = Limits()


@functools.cache
def bwrap_path() -> str | None:
    """bwrap when it is installed and can build a sandbox here (probed once per process)."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def _limit_prefix(limits: Limits) -> list[str]:
    values = {"cpu": limits.cpu_s, "as": limits.memory_mb * 2**20, "nproc": limits.processes,
              "fsize": limits.file_size_mb * 2**20, "nofile": limits.open_files, "core": 0}
    prlimit = shutil.which("prlimit")
    if prlimit:
        return [prlimit, *(f"--{k}={v}" for k, v in values.items()), "--"]
    names = {"cpu": "RLIMIT_CPU", "as": "RLIMIT_AS", "nproc": "RLIMIT_NPROC", "fsize": "RLIMIT_FSIZE",
             "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE"}
    sets = ";".join(f"r.setrlimit(r.{names[k]},({v},{v}))" for k, v in values.items() if hasattr(resource, names[k]))
    return [sys.executable, "-S", "-c", f"import os,sys,resource as r;{sets};os.execvp(sys.argv[1],sys.argv[1:])"]


def _bwrap_args(bwrap: str, spec: Spec, home: str, stand_ins: dict[Path, str]) -> list[str]:
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL",
            "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", home]
    if spec.network:
        args.append("--share-net")
    for src in SYSTEM_RO:
        if os.path.islink(src):
            args += ["--symlink", os.readlink(src), src]
        elif os.path.isdir(src):
            args += ["--ro-bind", src, src]
    for src in ETC_RO + (ETC_NET if spec.network else ()):
        args += ["--ro-bind-try", src, src]
    # Parents before children; at the same path a writable grant wins over a read-only one.
    mounts = sorted({(len(p.parts), 1, str(p)) for p in spec.write} | {(len(p.parts), 0, str(p)) for p in spec.read})
    for _, writable, path in mounts:
        if os.path.exists(path):
            args += ["--bind" if writable else "--ro-bind", path, path]
    for path in spec.read_only_inside:
        if path in stand_ins:
            args += ["--ro-bind", stand_ins[path], str(path)]
        elif os.path.lexists(path):
            args += ["--ro-bind", str(path), str(path)]
    mounted = [Path(p) for p in (*spec.read, *spec.write)]
    inside = spec.cwd is not None and any(spec.cwd == m or m in spec.cwd.parents for m in mounted)
    return args + ["--chdir", str(spec.cwd) if inside else home, "--"]


def scrubbed_env(home: str, tmp: str, extra: dict[str, str]) -> dict[str, str]:
    """Only what a command needs: none of the runtime's variables (API keys, tokens) leak in."""
    return {"PATH": SAFE_PATH, "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "TERM": "dumb", **extra}


def run(argv: list[str], spec: Spec, *, stdin: bytes | None = None, isolate: bool | None = None) -> SandboxResult:
    """Run argv under `spec`. `isolate`: None uses bwrap when it works; False forces the fallback."""
    bwrap = bwrap_path() if isolate is not False else None
    if not bwrap:
        return _run(argv, spec, stdin, None, {})
    with placeholders.hold(spec.agent, spec.read_only_inside) as held:
        return _run(argv, spec, stdin, bwrap, {p: _empty_source(folder=not placeholders.is_file(p)) for p in held})


def _run(argv: list[str], spec: Spec, stdin: bytes | None, bwrap: str | None,
         stand_ins: dict[Path, str]) -> SandboxResult:
    """`stand_ins`: the empty source to mount on each held placeholder."""
    started = time.monotonic()
    scratch = None
    if bwrap:
        home = "/tmp/home"
        command = _limit_prefix(spec.limits) + _bwrap_args(bwrap, spec, home, stand_ins) + argv
        cwd = None
    else:
        scratch = tempfile.mkdtemp(prefix="vault-agent-sandbox-")
        home = scratch
        command = _limit_prefix(spec.limits) + argv
        cwd = str(spec.cwd) if spec.cwd else scratch
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                env=scrubbed_env(home, "/tmp" if bwrap else home, spec.env), start_new_session=True,
                                close_fds=True)
    except OSError:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    with _LIVE_LOCK:
        _LIVE.add(proc.pid)
    try:
        out, err, timed_out, truncated = _communicate(proc, stdin, spec.limits, started)
    finally:
        _kill_group(proc.pid)
        proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(proc.pid)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return SandboxResult(None if timed_out else proc.returncode, out, err, timed_out, truncated, bool(bwrap),
                         time.monotonic() - started)


@functools.cache
def _empty_sources() -> str:
    """A private folder holding an empty read-only file and folder, the sources of every placeholder."""
    folder = tempfile.mkdtemp(prefix="vault-agent-empty-")
    os.mkdir(os.path.join(folder, "folder"), 0o555)
    os.close(os.open(os.path.join(folder, "file"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
    atexit.register(_remove_sources, folder)
    return folder


def _remove_sources(folder: str) -> None:
    os.chmod(os.path.join(folder, "folder"), 0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _empty_source(*, folder: bool) -> str:
    return os.path.join(_empty_sources(), "folder" if folder else "file")


def _communicate(proc: subprocess.Popen[bytes], stdin: bytes | None, limits: Limits,
                 started: float) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin, read both pipes up to the output cap, stop at the timeout or soon after the command exits."""
    deadline = started + limits.timeout_s
    buffers: dict[int, bytearray] = {}
    truncated = False
    pending = memoryview(stdin or b"")
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)
            sel.register(stream, selectors.EVENT_READ)
            buffers[stream.fileno()] = bytearray()
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            if pending:
                sel.register(proc.stdin, selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        exited = False  # once the command exits, the deadline shrinks to a short grace period
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                break
            if not exited and proc.poll() is not None:
                # The command is done; a background child still holding the pipes gets a moment, then the group kill.
                exited = True
                deadline = min(deadline, now + 0.2)
            for key, _ in sel.select(timeout=min(0.05, deadline - now)):
                if key.fileobj is proc.stdin:
                    try:
                        pending = pending[os.write(key.fd, pending):]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(key.fileobj)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = buffers[key.fd]
                room = limits.output_bytes - len(buf)
                if room > 0:
                    buf += chunk[:room]
                truncated = truncated or len(chunk) > room
    timed_out = False
    if proc.poll() is None:  # the pipes closed first; the command may still be finishing
        try:
            proc.wait(timeout=max(0.0, started + limits.timeout_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    assert proc.stdout is not None and proc.stderr is not None
    return bytes(buffers[proc.stdout.fileno()]), bytes(buffers[proc.stderr.fileno()]), timed_out, truncated


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _kill_live() -> None:
    with _LIVE_LOCK:
        for pgid in list(_LIVE):
            _kill_group(pgid)
