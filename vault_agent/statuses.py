"""The statuses a run record can have (spec/log-record.md), in one place. Imports nothing: the command line's
`log --status` choices come from here, and `vault-agent --help` must not pay for importing the runtime."""

from __future__ import annotations

STATUSES = ("ok", "error", "refused", "busy", "interrupted", "killed")
# Stopped from outside rather than failed: another run held the lock, Ctrl-C or SIGTERM, or killed outright
# (SIGKILL, out of memory, power loss; logged by the next run to take the lock, never a run's own result).
STOPPED = ("busy", "interrupted", "killed")
