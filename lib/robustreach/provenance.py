"""Where and with what a result was made: time, package versions, git state, device, host.

No tool notices by itself that imported code changed between two runs, so every record keeps
the git commit and a dirty flag of the repository the code comes from.

```python
provenance()
# {"created": "2025-01-01T12:00:00.000+00:00", "versions": {"python": "3.12.3", "jax": ...},
#  "git": {"commit": "ab12...", "dirty": False}, "device": {"backend": "cpu", "kind": "cpu", "count": 2},
#  "hostname": "node17"}
```
"""

from __future__ import annotations

import datetime
import functools
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["git_state", "package_versions", "provenance", "utc_now"]

_PACKAGES = ("jax", "jaxlib", "equinox", "optax", "robustreach")


def utc_now() -> str:
    """The current time in UTC, ISO 8601 with milliseconds."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    # Reading package metadata takes milliseconds; installed versions do not change mid-run.
    found = []
    for name in _PACKAGES:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            found.append((name, None))
    return tuple(found)


def package_versions() -> dict[str, str | None]:
    """Installed versions of Python and the packages results depend on (None if absent)."""
    return {"python": platform.python_version(), **dict(_installed_versions())}


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(repo: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git repository holding `repo`.

    `repo` defaults to the directory of the `robustreach` sources, since that is the code that
    made the result. Outside git both are None; a repository without commits has commit None.
    Untracked files count as dirty: an unadded module can change results too.
    """
    path = Path(repo) if repo is not None else Path(__file__).resolve().parent
    status = _git(path, "status", "--porcelain=v2", "--branch")  # one call: header has the commit
    if status is None:  # not a git work tree (or git missing)
        return {"commit": None, "dirty": None}
    commit = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    return {"commit": commit, "dirty": dirty}


def _device() -> dict[str, str | int | None]:
    """JAX's default backend, its device kind and how many devices it has (on a CPU, the host
    split by `robustreach.devices`: training sharded over them agrees with one device only to
    float32 rounding)."""
    import jax

    devices = jax.devices()
    return {"backend": jax.default_backend(), "kind": devices[0].device_kind if devices else None, "count": len(devices)}


def provenance(repo: str | Path | None = None, *, device: bool | None = None) -> dict[str, Any]:
    """Provenance of a result made now, in this process.

    **Arguments:**
    - `repo`: a path inside the git repository to describe (default: the robustreach sources).
    - `device`: whether to report JAX's default backend and device kind. The default (None)
      reports it only when JAX is already imported, because initialising a backend in, say, a
      batch driver would claim GPU memory that its notebook kernels need.
    """
    if device is None:
        device = "jax" in sys.modules
    return {
        "created": utc_now(),
        "versions": package_versions(),
        "git": git_state(repo),
        "device": _device() if device else None,
        "hostname": socket.gethostname(),
    }
