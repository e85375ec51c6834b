"""Files of training in progress: checkpoints and per-set locks, under `results/`.

- `checkpoints/<short group hash>.layout<N>.eqx`: the training state of a group of parameter
  sets trained together. The name holds what makes a checkpoint resumable: the hash of the
  group's hyperparameters and `CHECKPOINT_LAYOUT`, the version of the state's structure
  (raise it whenever that structure changes, so that old checkpoints are never read into the
  new one). A checkpoint that cannot be read is set aside as `<name>.bad-<UTC time>` and that
  group starts over; `db gc` removes set-aside and older-layout checkpoints.
- `locks/<short params hash>.lock`: held (`filelock.FileLock`, released by the OS if the
  process dies) while a process trains that parameter set, so a second process waits for it
  and then finds the model recorded instead of training it again.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from filelock import FileLock

from robustreach.hashing import short_hash
from robustreach.provenance import utc_now

__all__ = [
    "CHECKPOINT_LAYOUT",
    "checkpoint_file",
    "is_current_checkpoint",
    "set_aside",
    "training_lock",
]

logger = logging.getLogger(__name__)

CHECKPOINT_LAYOUT = 2  # 1: unversioned `<hash>.eqx` (before this scheme)
CHECKPOINTS = "checkpoints"
LOCKS = "locks"
_CURRENT = re.compile(rf"^[0-9a-f]{{12}}\.layout{CHECKPOINT_LAYOUT}\.eqx$")


def checkpoint_file(root: str | Path, group_hash: str) -> Path:
    """Where the training state of the group with this hyperparameter hash is kept."""
    return Path(root) / CHECKPOINTS / f"{short_hash(group_hash)}.layout{CHECKPOINT_LAYOUT}.eqx"


def is_current_checkpoint(name: str) -> bool:
    """Whether a file name under `checkpoints/` is a checkpoint this version can resume."""
    return bool(_CURRENT.match(name))


def set_aside(path: Path, reason: str) -> Path:
    """Move an unusable file to `<name>.bad-<UTC time>` beside it (kept for inspection)."""
    stamp = utc_now().replace(":", "").replace("+0000", "Z").replace("+00:00", "Z")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
    os.replace(path, target)
    logger.warning("%s: %s; moved to %s, training starts over", path, reason, target.name)
    return target


def training_lock(root: str | Path, params_hash: str) -> FileLock:
    """The lock held while a process trains the parameter set with this hash."""
    path = Path(root) / LOCKS / f"{short_hash(params_hash)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))
