"""Shared test set-up: tests import helpers from sibling test modules."""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# A shell that starts the tests in the background (`nohup make test &`) makes them ignore SIGINT, and every
# process they start inherits that: the tests that press Ctrl-C on a command would see it carry on. Caught
# (not ignored) here, SIGINT is back to its default in each child, as it is under a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Fixtures shared across test modules are registered here, not imported into each module.
from security_kit import servers  # noqa: E402,F401
