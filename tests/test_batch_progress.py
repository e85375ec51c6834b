"""The terminal's view of running runs: the progress lines of this attempt's runs only."""

import os
import subprocess
import sys
import time

from robustreach.batch.progress import watch_runs
from robustreach.batch.runs import RunSpec
from robustreach.store.maintenance import host_name


class RecordingBar:
    disable = False

    def __init__(self):
        self.postfixes = []

    def set_postfix_str(self, text, refresh=True):
        self.postfixes.append(text)


def test_a_killed_attempts_folder_is_not_shown_as_running(tmp_path):
    """A run killed with -9 leaves its temporary folder; when the batch is started again, the
    terminal shows the new attempt's bar, not the dead one's last line beside it."""
    spec = RunSpec(notebook="nb/train.qmd", notebook_path=str(tmp_path / "train.qmd"), parameters={},
                   hash="ab" * 32, results=str(tmp_path), part="part")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    final = tmp_path / spec.relative_dir
    bars = {dead.pid: "training:   8%|##  | 150/2000 [1:04:04<72:50:02]",
            os.getpid(): "training:   0%|    | 2/2000 [00:09<2:23:30]"}
    for pid, line in bars.items():
        folder = final.with_name(f".{final.name}.tmp-{host_name()}-{pid}-0123abcd")
        folder.mkdir(parents=True)
        (folder / "train.log").write_text(f"starting\n{line}\n")
    bar = RecordingBar()
    with watch_runs(bar, [spec], interval_s=0.01):
        deadline = time.monotonic() + 10
        while not bar.postfixes and time.monotonic() < deadline:
            time.sleep(0.01)
    assert bar.postfixes[0] == f"train {'ab' * 6}: {bars[os.getpid()]}"
