"""Checkpoints: the whole training state in one file, written atomically.

A checkpoint holds parameters, optimiser state, history and snapshots as one pytree, so a
run restarted from it continues exactly (batch keys depend only on the batch index). Where
checkpoints live and how they are named: `robustreach.store.training`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import equinox as eqx
from jaxtyping import PyTree

from robustreach.store.training import set_aside


def save_checkpoint(path: Path, state: PyTree) -> None:
    """Serialise `state` to `path` through a temporary file, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            eqx.tree_serialise_leaves(file, state)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, like: PyTree) -> PyTree:
    """Read a checkpoint into a pytree shaped like `like`."""
    return eqx.tree_deserialise_leaves(path, like)


def resume_checkpoint(path: Path, like: PyTree) -> PyTree | None:
    """The state saved at `path`, or None when there is none or it cannot be read into `like`
    (truncated, corrupted, or of another structure): such a file is set aside beside itself
    (`<name>.bad-<time>`, with a warning naming it) so that training starts over."""
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, like)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint means: start over
        set_aside(path, f"unreadable checkpoint ({type(error).__name__}: {error})")
        return None
