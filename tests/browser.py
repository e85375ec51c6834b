"""Headless Chromium for the site tests: where it is and how to run it offline."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs chromium on PATH (apt-get install -y chromium)"
)


def chromium(page: Path, profile: Path, *args: str, budget_ms: int = 15000) -> str:
    """Open `page` in headless Chromium with no network access; returns its stdout
    (the DOM after the page's scripts ran, with `--dump-dom`)."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout
