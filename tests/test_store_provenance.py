"""Provenance: time, versions, git commit and dirty flag, host."""

import datetime
import platform
import socket
import subprocess
from importlib.metadata import version

from robustreach.provenance import git_state, provenance


def git(repo, *args):
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_state_through_a_repository_life(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}  # not a repository
    git(tmp_path, "init", "-q")
    assert git_state(tmp_path) == {"commit": None, "dirty": False}
    (tmp_path / "a.py").write_text("x = 1\n")
    assert git_state(tmp_path) == {"commit": None, "dirty": True}  # untracked code counts
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path / ".") == {"commit": head, "dirty": True}


def test_provenance_fields(tmp_path):
    before = datetime.datetime.now(datetime.UTC)
    prov = provenance(tmp_path, device=True)
    after = datetime.datetime.now(datetime.UTC)
    created = datetime.datetime.fromisoformat(prov["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert before - datetime.timedelta(milliseconds=1) <= created <= after
    assert prov["versions"]["python"] == platform.python_version()
    for name in ("jax", "jaxlib", "equinox", "optax", "robustreach"):
        assert prov["versions"][name] == version(name)
    assert prov["git"] == {"commit": None, "dirty": None}
    assert prov["hostname"] == socket.gethostname()
    import jax

    assert prov["device"] == {"backend": jax.default_backend(), "kind": jax.devices()[0].device_kind,
                              "count": len(jax.devices())}
    assert provenance(tmp_path, device=False)["device"] is None
