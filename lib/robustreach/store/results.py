"""`ResultsStore`: the index plus the files it points to, in one object.

```python
store = ResultsStore("results")
record = store.save_model(model, hyperparameters, side_files={"history": history})
model, record = store.load_model({"train": {"n_batches": 100}}, skeleton=make_like)
store.find("models", {"perturbation.std": OneOf([0.0, 0.5])})
```
Each concern lives in its own module and is mixed in here: generic records and backups
(`index`), models, the evaluation cache, figures, summary tables, and garbage collection
(`maintenance`).
"""

from __future__ import annotations

from robustreach.store.evaluations import EvaluationsMixin
from robustreach.store.figures import FiguresMixin
from robustreach.store.index import ResultsIndex
from robustreach.store.maintenance import MaintenanceMixin
from robustreach.store.models import ModelsMixin
from robustreach.store.summaries import SummariesMixin

__all__ = ["ResultsStore"]


class ResultsStore(ModelsMixin, EvaluationsMixin, FiguresMixin, SummariesMixin, MaintenanceMixin, ResultsIndex):
    """The results directory: `index.json` (TinyDB), its CSV backup, and the files it lists.

    **Arguments:**
    - `root`: the results directory (default "results"); `index.json` is created lazily.
    - `lock_timeout`: seconds to wait for another process's write before giving up.

    Layout: `index.json`, `db-csv/<table>.csv`, `models/`, `evaluations/`, `figures/`,
    `summaries/`, `archive/` (gc). Tables: "models", "evaluations", "figures", "summaries",
    "runs", or any other name.
    """
