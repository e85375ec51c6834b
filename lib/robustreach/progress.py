"""Progress bars that suit where the code runs.

In an interactive notebook a bar is a Jupyter widget (`tqdm.auto`). In a notebook that
`robustreach batch` executes, a widget would be stored in the notebook as an output that
only a widget manager loaded from the network can draw, so there bars are plain text
appended to the run's log (`ROBUSTREACH_PROGRESS_FILE`), which the batch shows in the
terminal while the run executes (`robustreach.batch.progress`), and never in the stored
notebook. (Not the kernel's stderr: ipykernel copies what reaches it into the notebook.)

`ROBUSTREACH_PROGRESS` chooses: `auto` (default), `text` (what the batch sets for its
kernels) or `off`.

```python
for batch in progress_bar(range(n), desc="training"):
    ...
```
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

from tqdm.auto import tqdm as tqdm_auto
from tqdm.std import tqdm as tqdm_std

__all__ = ["ENV", "FILE_ENV", "Mode", "TextBar", "progress_bar", "progress_mode"]

ENV = "ROBUSTREACH_PROGRESS"
FILE_ENV = "ROBUSTREACH_PROGRESS_FILE"  # text bars go here (appended), else to stderr
Mode = Literal["auto", "text", "off"]
TEXT_INTERVAL_S = 2.0  # a text bar in a log file: one line every few seconds is enough


def progress_mode() -> Mode:
    """The mode `ROBUSTREACH_PROGRESS` asks for (unknown values mean `auto`)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    return mode if mode in ("auto", "text", "off") else "auto"  # type: ignore[return-value]


class TextBar(tqdm_std):
    """A text bar that closes, when it closes, the file it was given to own."""

    def __init__(self, *args: Any, owns_file: bool = False, **kwargs: Any) -> None:
        self._owned = kwargs.get("file") if owns_file else None
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        super().close()
        if self._owned is not None and not self._owned.closed:
            self._owned.close()


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar over `iterable` (tqdm's keyword arguments), as text or widget by mode."""
    mode = progress_mode()
    kwargs["disable"] = bool(kwargs.get("disable")) or mode == "off"
    if mode != "text":
        return tqdm_auto(iterable, **kwargs)
    kwargs.setdefault("mininterval", TEXT_INTERVAL_S)
    kwargs.setdefault("ascii", True)
    kwargs.setdefault("ncols", 100)
    path = os.environ.get(FILE_ENV)
    if "file" in kwargs or not path or kwargs["disable"]:
        return TextBar(iterable, **{"file": sys.__stderr__, **kwargs})
    return TextBar(iterable, file=open(path, "a", encoding="utf-8", buffering=1), owns_file=True, **kwargs)  # noqa: SIM115
