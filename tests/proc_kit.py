"""Killing a real writer process mid-write, for the crash-safety tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_writer(script: Path, folder: Path, delay_s: float) -> None:
    """Start `script FOLDER`, wait until it prints "ready" (it is writing), SIGKILL it `delay_s` later."""
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
