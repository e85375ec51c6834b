"""JAX's persistent compilation cache, shared by every process that works on one results folder.

A function compiled once (the training step takes seconds to compile) is stored under
`<results>/jax-cache/` and loaded, not compiled, by the next process: the next CLI call, the
next run of the trainer, and every notebook kernel of a batch.

```python
enable_compile_cache("results")                 # this process (CLI, trainer)
os.environ.update(compile_cache_environment("results"))   # child processes (notebook kernels)
```
`$ROBUSTREACH_COMPILE_CACHE` overrides the folder; `off` (or `0`, `false`, `no`) turns the
cache off for this process and its children (`robustreach --no-compile-cache ...`).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ROBUSTREACH_COMPILE_CACHE"
SUBDIR = "jax-cache"
# JAX's defaults (1 s, and entries of any size) would skip the many sub-second compilations
# of a notebook (rollouts, evaluations); loading those is still faster than compiling them.
MIN_COMPILE_TIME_S = 0.2
_OFF = {"off", "0", "false", "no", "none"}


def compile_cache_dir(results: str | Path) -> Path | None:
    """The cache folder for `results` (`$ROBUSTREACH_COMPILE_CACHE` wins), or None when off."""
    value = os.environ.get(ENV_VAR)
    if value is not None and value.strip().lower() in _OFF:
        return None
    return Path(value) if value else Path(results) / SUBDIR


def enable_compile_cache(results: str | Path, *, min_compile_time_s: float = MIN_COMPILE_TIME_S) -> Path | None:
    """Point this process's JAX at the cache folder of `results`; returns it (None when off).

    Compilations that took less than `min_compile_time_s` are not stored.
    """
    import jax  # here, so that the command line starts without loading JAX
    from jax.experimental.compilation_cache import compilation_cache

    directory = compile_cache_dir(results)
    if directory is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    if jax.config.jax_compilation_cache_dir != str(directory):
        jax.config.update("jax_compilation_cache_dir", str(directory))
        compilation_cache.reset_cache()  # JAX opens its cache once; make it open the new folder
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


def compile_cache_environment(results: str | Path, *, min_compile_time_s: float = MIN_COMPILE_TIME_S) -> dict[str, str]:
    """Environment variables that give a child process (a notebook kernel) the same cache.

    JAX reads `JAX_COMPILATION_CACHE_DIR` and friends when it starts, so the kernels need no
    code of their own; `ROBUSTREACH_COMPILE_CACHE` keeps the library's later calls consistent.
    """
    directory = compile_cache_dir(results)
    if directory is None:
        return {ENV_VAR: "off", "JAX_ENABLE_COMPILATION_CACHE": "false"}
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    return {
        ENV_VAR: str(directory),
        "JAX_COMPILATION_CACHE_DIR": str(directory),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": str(min_compile_time_s),
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
