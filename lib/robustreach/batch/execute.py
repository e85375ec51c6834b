"""Execute one run with papermill; runs in whichever process or machine the executor picks.

`execute_run(spec)` never raises for a failing notebook: it returns a result dict (status,
duration, error with the failing cell, file paths) for the coordinating process to record;
workers never write the index. The run's directory appears whole or not at all: the run
executes in a hidden temporary directory beside it, renamed into place at the end (a failed
run keeps its executed notebook, which shows where it stopped). SIGTERM (what Slurm sends at
its time limit) is turned into an exception while a run executes, so the temporary directory
is removed as on Ctrl-C; one left by `kill -9` is named `.<hash>.tmp-<host>-<pid>-<id>`, which
lets `robustreach db gc` tell an abandoned one from a live one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import nbformat
import papermill
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager

from robustreach.batch.runs import RunSpec
from robustreach.compile_cache import compile_cache_environment
from robustreach.devices import cpu_device_environment
from robustreach.qmd import read_notebook
from robustreach.store.maintenance import host_name

__all__ = ["KERNEL_ENV", "ensure_kernel", "execute_run", "kernel_environment"]

KERNEL_ENV = {
    # Concurrent kernels must not each grab most of the GPU's memory.
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    # Figures carry both the Plotly JSON (for Quarto) and HTML (for nbconvert pages).
    "PLOTLY_RENDERER": "plotly_mimetype+notebook_connected",
    # Silences debugpy's "frozen modules" warning in every kernel's log.
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    # Progress bars belong to interactive sessions; in a stored notebook they are noise, and
    # a widget needs a widget manager from the network. The library's own bars become text
    # in the run's log (robustreach.progress); any other tqdm bar is off.
    "TQDM_DISABLE": "1",
    "ROBUSTREACH_PROGRESS": "text",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@contextmanager
def kernel_environment(results: str | Path, log: str | Path | None = None) -> Iterator[None]:
    """Set the kernels' environment (`KERNEL_ENV`, `ROBUSTREACH_RESULTS`, the compilation
    cache of `results`, the CPU split into devices (`robustreach.devices`), and the run's
    `log` for progress bars: `ROBUSTREACH_PROGRESS_FILE`), restored on exit.

    Kernels inherit this process's environment when they start, so it is set around the
    papermill call only.
    """
    values = {**KERNEL_ENV, "ROBUSTREACH_RESULTS": str(Path(results).resolve()), **compile_cache_environment(results),
              **cpu_device_environment()}
    if log is not None:
        values["ROBUSTREACH_PROGRESS_FILE"] = str(Path(log).resolve())
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_kernel(name: str = "python3", *, prefix: str | Path = sys.prefix) -> None:
    """Make sure kernel `name` runs this interpreter (which has robustreach installed).

    jupyter_client runs a spec whose command is `python` with `sys.executable`; a spec
    pointing at another Python (a system-wide kernel) would lack the project's packages, so
    a spec for this interpreter is installed under `prefix` (this environment's
    `share/jupyter`), which Jupyter searches before system-wide directories.
    """

    def runs_this_python() -> bool:
        try:
            argv = KernelSpecManager().get_kernel_spec(name).argv
        except NoSuchKernel:
            return False
        return bool(argv) and (
            argv[0] in ("python", "python3") or Path(argv[0]).resolve() == Path(sys.executable).resolve()
        )

    if runs_this_python():
        return
    from ipykernel.kernelspec import install

    install(kernel_name=name, prefix=str(prefix))
    if not runs_this_python():
        found = KernelSpecManager().find_kernel_specs().get(name)
        raise RuntimeError(
            f"kernel {name!r} at {found} does not run {sys.executable}, and the one installed under {prefix} "
            "is shadowed by it; remove that spec or set JUPYTER_PREFER_ENV_PATH=1"
        )


def _kernel_manager(log: IO[str], sockets: Path) -> type[AsyncKernelManager]:
    """A kernel manager whose kernel writes its stdout/stderr to `log` and talks over Unix
    sockets in the folder `sockets`.

    Over TCP, jupyter_client picks free ports, releases them and lets the kernel bind them;
    another process can take one in between, and a kernel whose heartbeat lost that race was
    seen to hang its run for good. Socket files in a folder of the run's own cannot collide.
    """

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any):
            super().__init__(**{"transport": "ipc", "ip": str(sockets / "kernel"), **kwargs})

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            await super()._async_launch_kernel(kernel_cmd, **{"stdout": log, "stderr": log, **kw})

    return RunKernelManager


def _kernel_failed_to_start(error: BaseException) -> bool:
    """The kernel died while starting (it could not bind its sockets, or crashed on import)."""
    text = f"{type(error).__name__}: {error}"
    return "Address already in use" in text or "Kernel died before replying to kernel_info" in text


def _failing_cell(path: Path) -> int | None:
    """Index of the first cell with an error output in the saved notebook."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None
    for index, cell in enumerate(nb.cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return None


def _error_info(error: BaseException, notebook: Path) -> tuple[dict[str, Any], str]:
    """The error for the index (failing cell, ename, evalue) and the traceback for the log."""
    if isinstance(error, papermill.PapermillExecutionError):
        info = {
            "cell_index": _failing_cell(notebook),  # in the executed notebook as saved
            "execution_count": error.exec_count,
            "ename": error.ename,
            "evalue": error.evalue,
            "source": error.source.split("\n")[0][:200] if error.source else "",
        }
        return info, _ANSI.sub("", "\n".join(error.traceback))
    info = {"cell_index": None, "execution_count": None, "ename": type(error).__name__, "evalue": str(error)}
    return info, "".join(traceback.format_exception(error))


def _label(path: Path, spec: RunSpec) -> None:
    """Mark the executed notebook with its run: source path, hash, and a page subtitle."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("papermill", {})["input_path"] = spec.notebook  # not the in-memory copy
    nb.metadata["robustreach"] = {"run_hash": spec.hash, "part": spec.part, "notebook": spec.notebook}
    front = next((c for c in nb.cells if c.cell_type == "raw"), None)
    if front is not None and front.source.startswith("---") and "\nsubtitle:" not in front.source:
        # Quarto titles each run's page from this front matter; runs of one notebook differ here.
        head, _, _ = front.source.rstrip().rpartition("\n")
        front.source = f'{head}\nsubtitle: "Run {spec.hash[:12]} ({spec.part})"\n---'
    if front is not None and front is not nb.cells[0]:  # papermill puts its error banner first
        nb.cells.remove(front)
        nb.cells.insert(0, front)
    nbformat.write(nb, path)


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM during a run."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While executing, SIGTERM raises `Terminated` (exit status 143) so clean-up code runs.

    Only the main thread can set signal handlers; elsewhere (threaded executors) the default
    stays, and `db gc` removes what a killed run leaves.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def replace_directory(tmp: Path, final: Path) -> None:
    """Put a finished directory in place of `final` (renames; the old one is removed after)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def execute_run(spec: RunSpec) -> dict[str, Any]:
    """Execute `spec`'s notebook with its parameters; return the result dict for the index.

    Keys: `hash`, `status` ("ok" or "failed"), `duration_s`, `error` (None, or `cell_index`,
    `execution_count`, `ename`, `evalue`, `source`: the failing cell's first line), `files`
    (relative to the results directory). The full traceback goes to the run's log.
    """
    start = time.perf_counter()
    final = Path(spec.results) / spec.relative_dir
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{host_name()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with _sigterm_raises():
            tmp.mkdir()
            error = _execute_into(spec, tmp)
            replace_directory(tmp, final)
    except BaseException:  # interrupted, terminated or broken: leave no half-written run behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "hash": spec.hash,
        "status": "ok" if error is None else "failed",
        "duration_s": round(time.perf_counter() - start, 3),
        "error": error,
        "files": spec.files,
    }


def _execute_into(spec: RunSpec, directory: Path) -> dict[str, Any] | None:
    """Run papermill, writing the run's files into `directory`; returns the error, if any."""
    names = {key: Path(path).name for key, path in spec.files.items()}
    output = directory / names["notebook"]
    (directory / names["parameters"]).write_text(json.dumps(spec.parameters, indent=2, sort_keys=True, allow_nan=False) + "\n")
    error = None
    log_path = directory / names["log"]
    with (
        open(log_path, "a", encoding="utf-8") as log,
        kernel_environment(spec.results, log_path),
        tempfile.TemporaryDirectory(prefix="robustreach-kernel-") as sockets,  # short: a socket path has 107 bytes
    ):
        log.write(f"# robustreach run {spec.hash[:12]}: {spec.notebook}\n")
        log.flush()
        for attempt in (1, 2):
            try:
                papermill.execute_notebook(
                    read_notebook(spec.notebook_path),
                    str(output),
                    parameters=spec.parameters,
                    kernel_name=spec.kernel_name,
                    cwd=str(Path(spec.notebook_path).parent),  # as under `quarto render`
                    progress_bar=False,
                    stdout_file=log,
                    stderr_file=log,
                    execution_timeout=spec.execution_timeout,
                    kernel_manager_class=_kernel_manager(log, Path(sockets)),
                )
            except Exception as exc:  # noqa: BLE001 -- any failure becomes this run's error
                if attempt == 1 and _kernel_failed_to_start(exc):
                    log.write(f"# kernel failed to start ({exc}); retrying once\n")
                    log.flush()
                    continue
                error, trace = _error_info(exc, output)
                log.write(f"\n# {error['ename']}: {error['evalue']}\n{trace}\n")
            break
    if output.exists():
        _label(output, spec)
    return error
