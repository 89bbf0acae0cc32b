"""Shell rules: which commands are refused outright, which wait for a person's approval, which may run.

These rules read the command text, so they are a first line, not the
boundary: the sandbox (sandbox.py) is what limits a command that slips past
them. Refused outright: the catastrophic (disk wipes, `rm -rf /`, fork bombs,
shutdown, killing the runtime) and the obfuscated (decoded text piped into a
shell, interpreter one-liners that shell out). Approval first: piping a
download into a shell, privilege escalation, package installs, programs that
tools.md does not allow, and absolute paths outside the grants.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .decision import ALLOWED, Decision, approve, refuse

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "ash", "busybox"})
INTERPRETERS = frozenset({"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "deno",
                          "bun", "pwsh", "osascript", "tclsh", "Rscript"})
ESCALATION = frozenset({"sudo", "su", "doas", "pkexec", "runuser"})
WRAPPERS = frozenset({"env", "nice", "nohup", "time", "timeout", "stdbuf", "ionice", "command", "exec", "builtin",
                      "then", "do", "else", "if", "while", "until", "!", "{", "}", "xargs", "watch", "chroot",
                      "setsid", "unbuffer", "caffeinate", "strace", "ltrace"})
# Plain system folders a command may name without approval.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/tmp", "/dev/null", "/dev/stdin", "/dev/stdout",
                "/dev/stderr", "/dev/zero", "/dev/urandom", "/dev/random", "/proc/self")
_REDIRECT = re.compile(r"^(?:[<>]{1,2}&?|&>>?)$")
_PACKAGE_INSTALL = re.compile(
    r"\b(?:apt(?:-get)?|aptitude|dnf|yum|zypper|apk)\s+(?:-\S+\s+)*(?:install|add)\b|\bpacman\s+-S"
    r"|\b(?:pip3?|pipx|uv\s+pip|poetry|conda|mamba|gem|cargo|go|brew|port|snap|flatpak)\s+(?:-\S+\s+)*install\b"
    r"|\b(?:npm|pnpm|yarn|bun)\s+(?:-\S+\s+)*(?:i|install|add)\b|\bnpx\s|\buv\s+tool\s+install\b|\bpython3?\s+-m\s+pip\s+install\b")
_FORK_BOMB = re.compile(r"(?P<f>[\w:.]+)\s*\(\s*\)\s*\{[^}]*(?P=f)\s*\|\s*(?P=f)\s*&")
_DECODE_TO_SHELL = re.compile(
    r"(?:base64\s+(?:-d|--decode|-D)|base32\s+-d|xxd\s+-r|openssl\s+(?:enc\s+)?(?:-d\b|base64\s+-d)|uudecode|"
    r"printf\s+['\"]?[^|]*\\x[0-9a-fA-F]{2}|\brev\b|gunzip|zcat|\becho\s+-e\s+['\"]?[^|]*\\x)"
    r"[^|;&]*\|\s*(?:sudo\s+)?(?:\S*/)?(?:" + "|".join(sorted(SHELLS)) + r")\b")
_EVAL_DECODE = re.compile(r"\beval\b.*(?:base64|xxd|\\x[0-9a-fA-F]{2}|rev\b)")
_PIPE_TO_SHELL = re.compile(r"\|\s*(?:sudo\s+)?(?:\S*/)?(?:" + "|".join(sorted(SHELLS)) + r")\b")
_DOWNLOAD_EXEC = re.compile(r"(?:" + "|".join(sorted(SHELLS)) + r")\s+(?:-c\s+)?[\"']?\$\(\s*(?:curl|wget)|"
                            r"(?:source|\.)\s+<\(|(?:" + "|".join(sorted(SHELLS)) + r")\s+<\(")
_SHELLOUT = re.compile(r"\b(?:system|exec[lv]?p?e?|popen|spawn|subprocess|child_process|pty|shell_exec|passthru|"
                       r"proc_open|fork|os\.|Runtime\.getRuntime|IO\.popen|Kernel\.)\b|`")
_DISK = re.compile(r"\b(?:mkfs(?:\.\w+)?|wipefs|fdisk|sfdisk|parted|sgdisk|mkswap|blkdiscard)\b|"
                   r"\bdd\b[^|;&]*\bof=/dev/(?!null\b)|>\s*/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk)\w*|"
                   r"\bshred\b[^|;&]*/dev/")
_POWER = re.compile(r"^(?:shutdown|reboot|halt|poweroff)$")
_RUNTIME_WORDS = ("vault-agent", "vault_agent", "python", "bwrap", "pytest")
_ROOTISH = frozenset({"/", "/*", "~", "~/", "$HOME", "${HOME}", "/home", "/root", "/usr", "/etc", "/var", "/boot",
                      "/bin", "/lib", "/opt", "/srv", ".", "..", "*", "./*"})


@dataclass(frozen=True)
class ShellGrant:
    """From tools.md's `capabilities.shell`: programs that run without asking, programs that always ask."""

    allow: tuple[str, ...] = ()  # "*" = any program
    approve: tuple[str, ...] = ()
    network: bool = False


def segments(command: str) -> list[list[str]]:
    """The simple commands in `command` (split at pipes, lists, subshells and substitutions), as words.

    Quotes are honoured, so `python3 -c 'a; b'` is one command; a `$(...)` or
    backtick substitution becomes a command of its own, and a word that is
    only `$` marks a command name computed at run time.
    """
    lexer = shlex.shlex(_split_backticks(command.replace("\n", " ; ")), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out: list[list[str]] = []
    words: list[str] = []
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to plain words
        tokens = command.split()
    for token in tokens:
        if token and all(c in "();<>|&" for c in token) and not _REDIRECT.match(token):
            if words:
                out.append(words)
            words = []
        else:
            words.append(token)
    if words:
        out.append(words)
    return out


def _split_backticks(command: str) -> str:
    """Backticks outside single quotes start or end a substitution: make them command separators."""
    out, quoted = [], False
    for char in command:
        if char == "'":
            quoted = not quoted
        out.append(" | " if char == "`" and not quoted else char)
    return "".join(out)


def program(words: list[str]) -> tuple[str, list[str]]:
    """The program a simple command runs (past VAR=x assignments, redirections and wrappers like env,
    nice, timeout) and its arguments, redirection targets included."""
    plain: list[str] = []
    targets: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if _REDIRECT.match(word):
            targets.extend(words[i + 1:i + 2])
            i += 2
        elif word.isdigit() and i + 1 < len(words) and _REDIRECT.match(words[i + 1]):
            i += 1
        else:
            plain.append(word)
            i += 1
    i = 0
    while i < len(plain):
        word = plain[i]
        name = os.path.basename(word)
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word) or word.startswith("-"):
            i += 1
        elif name in WRAPPERS:
            i += 1
            if name == "timeout" and i < len(plain) and re.match(r"^[\d.]+[smhd]?$", plain[i]):
                i += 1
        else:
            return name, plain[i + 1:] + targets
    return "", targets


class ShellRules:
    """Judges one command against the deny-list, the approval list and the grant."""

    def __init__(self, grant: ShellGrant, allowed_paths: list[Path]) -> None:
        self.grant = grant
        self.allowed_paths = [str(p) for p in allowed_paths]
        self.runtime_pids = {str(os.getpid()), str(os.getppid())}

    def check(self, command: str) -> Decision:
        if "\x00" in command:
            return refuse("the command contains a null byte")
        flat = " ".join(command.split())
        denied = self._denied(command, flat)
        if denied:
            return refuse(denied)
        return self._needs_approval(command, flat) or ALLOWED

    def _denied(self, command: str, flat: str) -> str | None:
        if _FORK_BOMB.search(flat):
            return "refused: a fork bomb"
        if _DISK.search(flat):
            return "refused: writes to a disk device or wipes a file system"
        if _DECODE_TO_SHELL.search(flat) or _EVAL_DECODE.search(flat):
            return "refused: decodes hidden text and runs it (obfuscated command)"
        if "--no-preserve-root" in flat:
            return "refused: rm --no-preserve-root"
        for words in segments(command):
            name, args = program(words)
            if name == "rm" and any(re.match(r"^-[a-zA-Z]*[rR]", a) or a == "--recursive" for a in args):
                targets = [a for a in args if not a.startswith("-")]
                if any(t.rstrip("/") in _ROOTISH or t in _ROOTISH for t in targets):
                    return f"refused: recursive delete of {next(t for t in targets if t.rstrip('/') in _ROOTISH or t in _ROOTISH)}"
            if _POWER.match(name) or (name in ("init", "telinit") and args[:1] in (["0"], ["6"])) \
                    or (name == "systemctl" and args[:1] and args[0] in ("poweroff", "reboot", "halt", "kexec")):
                return "refused: shuts down or reboots the machine"
            if name in ("chmod", "chown", "chgrp") and "-R" in args and any(a in ("/", "/*") for a in args):
                return "refused: changes permissions of the whole file system"
            if name in INTERPRETERS or re.match(r"^python\d(\.\d+)?$", name):
                code = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "-e", "-r", "-E", "--eval")),
                            None)
                if code is not None and _SHELLOUT.search(code):
                    return f"refused: a {name} one-liner that runs other programs (write a script file instead)"
            if name in ("kill", "pkill", "killall", "skill"):
                reason = self._kills_runtime(name, args)
                if reason:
                    return reason
        return None

    def _kills_runtime(self, name: str, args: list[str]) -> str | None:
        i = 0
        while i < len(args) and args[i].startswith("-") and (name != "kill" or i == 0 or args[i] in ("-s", "-n")):
            i += 2 if args[i] in ("-s", "-n", "-u", "-U", "-g", "-G", "-t") else 1
        targets = args[i:]
        if name == "kill":
            if any(t in ("-1", "0", "1") or t in self.runtime_pids for t in targets):
                return "refused: would kill the runtime (or every process)"
            return None
        if any(w in t for t in targets for w in _RUNTIME_WORDS):
            return "refused: would kill the runtime"
        return None

    def _needs_approval(self, command: str, flat: str) -> Decision | None:
        if _PIPE_TO_SHELL.search(flat) or _DOWNLOAD_EXEC.search(flat):
            return approve("pipes text into a shell")
        if _PACKAGE_INSTALL.search(flat):
            return approve("installs packages")
        for words in segments(command):
            name, args = program(words)
            if not name:
                continue
            if name in ESCALATION:
                return approve(f"asks for other privileges ({name})")
            if name == "eval" or name.startswith("$") or "$(" in name:
                return approve("runs a command built at run time")
            if name in self.grant.approve:
                return approve(f"tools.md asks for approval before {name}")
            if "*" not in self.grant.allow and name not in self.grant.allow:
                return approve(f"runs {name}, which capabilities.shell.allow in tools.md does not list")
            for arg in args:
                outside = self._outside(arg)
                if outside:
                    return approve(f"names {outside}, outside the granted paths")
        return None

    def _outside(self, arg: str) -> str | None:
        value = arg.split("=", 1)[1] if re.match(r"^-{0,2}[\w-]+=/", arg) else arg
        if value.startswith("~") or value.startswith("$HOME"):
            return value
        if not value.startswith("/"):
            return None
        norm = os.path.normpath(value)
        if any(norm == p or norm.startswith(p.rstrip("/") + "/") for p in (*SYSTEM_PATHS, *self.allowed_paths)):
            return None
        # A path-looking word only counts when it names something on this machine ("/api/v1" in a grep does not).
        return value if os.path.lexists(norm) or os.path.isdir(os.path.dirname(norm)) and norm.count("/") > 1 \
            else None
