"""The core modules' jaxtyping annotations hold at run time (shapes included), checked by
beartype through jaxtyping's import hook in a fresh interpreter (`annotation_check.py`)."""

import subprocess
import sys
from pathlib import Path

from robustreach.perturbations import REGISTRY
from robustreach.plants import PLANTS


def test_rollouts_of_every_plant_and_perturbation_satisfy_the_annotations():
    script = Path(__file__).with_name("annotation_check.py")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    expected = {f"checked {plant} {kind}" for plant in PLANTS for kind in REGISTRY}
    assert expected <= set(lines), f"missing: {sorted(expected - set(lines))}"
    # the hook is active: a call whose shapes disagree with its annotation is refused
    assert "mismatch caught: TypeCheckError" in lines
