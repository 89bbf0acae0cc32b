"""Headless Chromium for page tests: a screenshot and the page's console messages.

Console check: Chromium started with `--enable-logging=stderr --v=0` prints
every console message and uncaught exception of the page as an
`INFO:CONSOLE` line on stderr; a page that logs nothing there had no console
errors. Failed resource loads do not show up there, so page tests also check
that the page references no resource at all.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class Rendered:
    screenshot: Path
    console: list[str]


def render(page: Path, screenshot: Path, *, width: int = 1280, height: int = 2000) -> Rendered:
    """Load `page` in headless Chromium, save a screenshot; skip the test when no Chromium is installed."""
    exe = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if exe is None:
        pytest.skip("chromium is not installed (CI installs it in .ci/run: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={screenshot}", f"--window-size={width},{height}",
             "--enable-logging=stderr", "--v=0", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert screenshot.is_file(), f"no screenshot; chromium said: {done.stderr[-2000:]}"
    return Rendered(screenshot, [line for line in done.stderr.splitlines() if ":CONSOLE" in line])
