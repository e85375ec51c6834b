"""What the terminal shows while a batch's runs execute: each running run's own progress.

A run's kernel writes the library's progress bars as text to its log
(`robustreach.progress`, `ROBUSTREACH_PROGRESS=text`). `watch_runs` reads the newest such
line from the logs of the runs executing now (in their temporary folders) and shows it, with
the run, after the batch's own bar: `demo runs: 1/8 [...] train 4b23f4c932b3: training:
45%|####   | 135/300 [00:10<00:12, 13.1it/s]`, so the estimated time of a long training is
on the terminal, wherever the batch was started from (a terminal, a Quarto pre-render step).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustreach.batch.runs import RunSpec
from robustreach.store.maintenance import run_folder_process_gone

__all__ = ["last_progress_line", "watch_runs"]

_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\d+(?:it| \w+)? \[\d")  # "45%|##  | 135/300" or "12it [00:03"
_TAIL_BYTES = 4096


def last_progress_line(log: Path) -> str | None:
    """The last progress-bar line in a run's log (bars redraw with `\\r`), or None."""
    try:
        with open(log, "rb") as file:
            file.seek(0, 2)
            file.seek(max(file.tell() - _TAIL_BYTES, 0))
            tail = file.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in re.split(r"[\r\n]", tail)]
    return next((line for line in reversed(lines) if line and _BAR.search(line)), None)


def _running_logs(specs: Sequence[RunSpec]) -> Iterator[tuple[RunSpec, Path]]:
    for spec in specs:
        final = Path(spec.results) / spec.relative_dir
        log_name = Path(spec.files["log"]).name
        for tmp in final.parent.glob(f".{final.name}.tmp-*"):
            if not run_folder_process_gone(tmp.name):  # not the folder of a killed earlier attempt
                yield spec, tmp / log_name


@contextmanager
def watch_runs(bar: Any, specs: Sequence[RunSpec], interval_s: float = 2.0) -> Iterator[None]:
    """While the block runs, show the running runs' progress after `bar` (a tqdm bar)."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval_s):
            shown = []
            for spec, log in _running_logs(specs):
                line = last_progress_line(log)
                shown.append(f"{spec.stem} {spec.hash[:12]}" + (f": {line}" if line else ": running"))
            if shown and not bar.disable:
                bar.set_postfix_str("; ".join(shown))

    thread = threading.Thread(target=watch, name="robustreach-run-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if not bar.disable:
            bar.set_postfix_str("", refresh=False)
