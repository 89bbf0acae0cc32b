"""A policy verdict on one tool call (allow, refuse, ask a person) and the refusal raised mid-call."""

from __future__ import annotations

from dataclasses import dataclass

ALLOW = "allow"
REFUSE = "refuse"
APPROVE = "approve"


@dataclass(frozen=True)
class Decision:
    """`verdict`: allow | refuse | approve (a person must say yes first); `reason` says why, in one line."""

    verdict: str
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict == ALLOW


ALLOWED = Decision(ALLOW)


def refuse(reason: str) -> Decision:
    return Decision(REFUSE, reason)


def approve(reason: str) -> Decision:
    return Decision(APPROVE, reason)


class Refused(Exception):
    """The policy refused something while a tool ran (a redirect to a private address, a path in an archive)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
