"""Summaries: the tables of numbers a notebook showed, as CSV, found like figures by identifier
and parameters.

A summary record keeps `identifier` (e.g. `behaviour/oscillation`), `hyperparameters =
{"train", "test", "options"}` and the hashes of the models it was computed from; saving the
same summary from the same models again replaces it. Files live under
`summaries/<identifier>/<short hash>.csv`. The findings (`robustreach.findings`) quote these
numbers without running anything.

```python
store.save_summary(table, "behaviour/oscillation", train=..., test=spec, model_hashes=hashes)
for record in store.find_summaries("behaviour/oscillation"):
    table = store.load_summary(record)
```
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from robustreach.hashing import jsonable, params_hash, short_hash
from robustreach.store.figures import check_identifier
from robustreach.store.files import atomic_write
from robustreach.store.query import identifier_matches

if TYPE_CHECKING:
    import pandas as pd

    from robustreach.store.index import ResultsIndex

__all__ = ["SUMMARIES", "SummariesMixin"]

SUMMARIES = "summaries"


class SummariesMixin:
    """Saving, finding and loading summary tables; mixed into `ResultsStore`."""

    def save_summary(
        self: ResultsIndex,
        table: pd.DataFrame,
        identifier: str,
        *,
        train: Mapping[str, Any],
        test: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        model_hashes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Write `table` as CSV (its index, if named, as columns) and record it in the index's
        table "summaries".

        **Arguments:**
        - `table`: a pandas DataFrame.
        - `identifier`: what it shows, e.g. "jacobians/stability".
        - `train`, `test`, `options`: the parameters that identify it (training condition, test
          condition, the summary's own options).
        - `model_hashes`: the models it was computed from.
        """
        check_identifier(identifier, "summary")
        hp = jsonable({"train": dict(train), "test": dict(test), "options": dict(options or {})})
        hashes = [str(h) for h in model_hashes]
        h = params_hash({"identifier": identifier, "hyperparameters": hp, "model_hashes": hashes, "kind": SUMMARIES})
        relpath = f"{SUMMARIES}/{identifier}/{short_hash(h)}.csv"
        flat = table.reset_index() if any(name is not None for name in table.index.names) else table
        atomic_write(self.root / relpath, flat.to_csv(index=False))
        record = {
            "hash": h,
            "identifier": identifier,
            "hyperparameters": hp,
            "model_hashes": hashes,
            "columns": [str(c) for c in flat.columns],
            "files": {"csv": relpath},
        }
        return self.upsert(SUMMARIES, record)

    def find_summaries(self: ResultsIndex, identifier: str | None = None) -> list[dict[str, Any]]:
        """Summary records under `identifier` (or one of its parents), in insertion order."""
        records = self.find(SUMMARIES)
        if identifier is not None:
            records = [r for r in records if identifier_matches(r.get("identifier"), identifier)]
        return records

    def load_summary(self: ResultsIndex, record: Mapping[str, Any] | str) -> pd.DataFrame:
        """The saved summary table (by record or hash)."""
        import pandas as pd

        rec = self.get(SUMMARIES, record) if isinstance(record, str) else dict(record)
        path = self.root / rec["files"]["csv"]
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"summary file {path} of record {rec['hash'][:12]} is missing") from None
        return pd.read_csv(io.StringIO(text))
