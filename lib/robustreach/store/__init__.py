"""The results store: a TinyDB index of models, evaluations, figures and runs under `results/`.

See `ResultsStore` for the API and `robustreach.store.query` for the `where` language.
"""

from robustreach.store.errors import AmbiguousQueryError, DuplicateRecordError, IndexCorruptError, NoIndexError, NoMatchError
from robustreach.store.evaluations import evaluation_hash
from robustreach.store.maintenance import GcReport
from robustreach.store.query import OneOf, Range
from robustreach.store.results import ResultsStore

__all__ = [
    "AmbiguousQueryError",
    "DuplicateRecordError",
    "GcReport",
    "IndexCorruptError",
    "NoIndexError",
    "NoMatchError",
    "OneOf",
    "Range",
    "ResultsStore",
    "evaluation_hash",
]
