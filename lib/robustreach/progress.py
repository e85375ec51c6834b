"""Progress bars that suit where the code runs.

In an interactive notebook a bar is a Jupyter widget (`tqdm.auto`). In a notebook that
`robustreach batch` executes, a widget would be stored in the notebook as an output that
only a widget manager loaded from the network can draw, so there bars are plain text written
to the kernel process's own stderr: the run's log, which the batch shows in the terminal
while the run executes (`robustreach.batch.progress`), and never the stored notebook.

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

__all__ = ["ENV", "Mode", "progress_bar", "progress_mode"]

ENV = "ROBUSTREACH_PROGRESS"
Mode = Literal["auto", "text", "off"]
TEXT_INTERVAL_S = 2.0  # a text bar in a log file: one line every few seconds is enough


def progress_mode() -> Mode:
    """The mode `ROBUSTREACH_PROGRESS` asks for (unknown values mean `auto`)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    return mode if mode in ("auto", "text", "off") else "auto"  # type: ignore[return-value]


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar over `iterable` (tqdm's keyword arguments), as text or widget by mode."""
    mode = progress_mode()
    if mode == "text":
        from tqdm.std import tqdm

        kwargs.setdefault("file", sys.__stderr__)
        kwargs.setdefault("mininterval", TEXT_INTERVAL_S)
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
    else:
        from tqdm.auto import tqdm
    kwargs["disable"] = bool(kwargs.get("disable")) or mode == "off"
    return tqdm(iterable, **kwargs)
