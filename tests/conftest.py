"""Shared test set-up: tests import helpers from sibling test modules."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Fixtures shared across test modules are registered here, not imported into each module.
from security_kit import servers  # noqa: E402,F401
