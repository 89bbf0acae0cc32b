"""The leak scan: stored secret values and well-known key and token shapes, replaced before text leaves the runtime.

Applied to every tool result before the model sees it, to every request sent
to a model, and to every note, journal entry and log line before it is
written. Exact values of all stored secrets (also base64- and URL-encoded)
become `[REDACTED:secret:NAME]`; recognisable keys and tokens become
`[REDACTED:<kind>]`. The patterns are anchored on the prefixes and
structure vendors give their keys, so ordinary text (dates, times, run ids,
hashes, prose about "tokens") passes unchanged.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Mapping
from urllib.parse import quote

# (kind, pattern, group to replace: 0 = the whole match). Order matters: specific before generic.
PATTERNS: tuple[tuple[str, str, int], ...] = (
    ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY"
                    r"(?: BLOCK)?-----", 0),
    ("anthropic-key", r"\bsk-ant-[a-z]{2,8}\d{0,3}-[A-Za-z0-9_-]{20,}", 0),
    ("openai-key", r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}", 0),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", 0),
    ("slack-token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}", 0),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}", 0),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", 0),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b", 0),
    ("stripe-key", r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{20,}", 0),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0),
    ("bearer-token", r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)", 1),
    ("aws-secret-key", r"(?i)\baws_?secret_?(?:access_?)?key\b[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})\b", 1),
    ("password", r"(?i)(?<![A-Za-z0-9_{])(?<!REDACTED:)(?:[A-Za-z0-9]+[_-])*(?:password|passwd|passphrase|secret|token|"
                 r"api[_-]?key|apikey|private[_-]?key|access[_-]?key|secret[_-]?key|secret[_-]?access[_-]?key|"
                 r"credentials?)(?![A-Za-z0-9_])[\"']?\s*[:=]\s*[\"']?([^\s\"'<>&,;{}]{6,})", 1),
)


# Literals one of which every match of a pattern contains (lower-case ones are checked against the
# lower-cased text). A pattern runs only where its literal occurs: most text has none, and thirteen
# regex passes over a 60 KB prompt cost ~20 ms on every model request.
_HINTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "private-key": (("PRIVATE KEY",), False),
    "anthropic-key": (("sk-ant-",), False),
    "openai-key": (("sk-",), False),
    "github-token": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), False),
    "slack-token": (("xox",), False),
    "slack-webhook": (("hooks.slack.com",), False),
    "aws-access-key": (("AKIA", "ASIA", "ABIA", "ACCA"), False),
    "google-api-key": (("AIza",), False),
    "stripe-key": (("k_live_", "k_test_"), False),
    "jwt": (("eyJ",), False),
    "bearer-token": (("bearer",), True),
    "aws-secret-key": (("aws",), True),
}
_PASSWORD_WORDS = ("password", "passwd", "passphrase", "secret", "token", "key", "credential")


def _may_hold_password(low: str) -> bool:
    """A password-like keyword followed (after at most an s, a quote and spaces) by ':' or '='."""
    for word in _PASSWORD_WORDS:
        i = low.find(word)
        while i != -1:
            j = i + len(word)
            end = min(len(low), j + 8)
            while j < end and low[j] in "s\"' \t":
                j += 1
            if j < len(low) and low[j] in ":=":
                return True
            i = low.find(word, i + 1)
    return False


def _password_like(value: str) -> bool:
    """A value after `password:` that looks like one (a digit or symbol, or long), not a word like "changed"."""
    return len(value) >= 16 or any(not c.isalpha() for c in value)


class Redactor:
    """Scrubs text. `values`: secret name -> value (all stored secrets, not only the granted ones)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        forms: dict[str, str] = {}
        for name, value in (values or {}).items():
            if not value:
                continue
            for form in (value, quote(value, safe=""), base64.b64encode(value.encode()).decode().rstrip("=")):
                forms.setdefault(form, name)
        self._names = forms
        self._exact = re.compile("|".join(re.escape(v) for v in sorted(forms, key=len, reverse=True))) \
            if forms else None
        self._patterns = [(kind, re.compile(p), group) for kind, p, group in PATTERNS]

    @property
    def has_values(self) -> bool:
        return self._exact is not None

    def scrub_found(self, text: str) -> tuple[str, list[str]]:
        """The scrubbed text and what was found in it (`secret:NAME` or a pattern kind), without repeats."""
        found: dict[str, None] = {}
        if self._exact is not None:
            def exact(m: re.Match[str]) -> str:
                label = f"secret:{self._names[m.group(0)]}"
                found[label] = None
                return f"[REDACTED:{label}]"
            text = self._exact.sub(exact, text)
        low = text.lower()
        for kind, pattern, group in self._patterns:
            if kind == "password":
                if not _may_hold_password(low):
                    continue
            else:
                literals, folded = _HINTS[kind]
                haystack = low if folded else text
                if not any(literal in haystack for literal in literals):
                    continue

            def swap(m: re.Match[str], kind: str = kind, group: int = group) -> str:
                value = m.group(group)
                if "[REDACTED:" in value or (kind == "password" and not _password_like(value)):
                    return m.group(0)
                found[kind] = None
                start, end = m.start(group) - m.start(0), m.end(group) - m.start(0)
                whole = m.group(0)
                return whole[:start] + f"[REDACTED:{kind}]" + whole[end:]
            text = pattern.sub(swap, text)
        return text, list(found)

    def scrub(self, text: str) -> str:
        return self.scrub_found(text)[0]

    __call__ = scrub


def load_redactor(vault_root: Path, env: Mapping[str, str]) -> tuple[Redactor, dict[str, str], str | None]:
    """The redactor for a run, the stored secret values, and a warning when the store cannot be opened.

    Without a store only the patterns apply. A store that exists but cannot be
    opened (no key, wrong key) leaves the patterns working and says so.
    """
    from .secrets import SecretError, SecretStore, store_path

    if not store_path(vault_root).exists():
        return Redactor(), {}, None
    try:
        values = SecretStore.open(vault_root, env).values()
    except SecretError as exc:
        return Redactor(), {}, (f"secret store not opened ({exc.one_line()}): stored values are not scrubbed and "
                                "{{secret:...}} references fail")
    return Redactor(values), values, None
