"""Errors of the results store, each naming what to look at or what to run."""

from __future__ import annotations

from typing import Any

__all__ = ["AmbiguousQueryError", "DuplicateRecordError", "IndexCorruptError", "NoIndexError", "NoMatchError"]


class IndexCorruptError(RuntimeError):
    """`index.json` cannot be read as an index; it is left untouched for inspection."""


class NoIndexError(FileNotFoundError):
    """There is no `index.json` where a command expected to read one."""


class NoMatchError(KeyError):
    """No record matches a hash or a query."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class AmbiguousQueryError(LookupError):
    """Several records match where one was expected.

    `fields` maps each field whose values differ among the matches to its distinct values, so
    that the query can be narrowed; `hashes` lists the matching records.
    """

    def __init__(self, message: str, fields: dict[str, list[Any]], hashes: list[str]):
        super().__init__(message)
        self.fields = fields
        self.hashes = hashes


class DuplicateRecordError(ValueError):
    """A record with this hash is already in the table (use upsert to replace it)."""
