"""Registries of extension classes (plants, perturbation kinds) found by their `name`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

ClassT = TypeVar("ClassT", bound=type)


def registrar(registry: dict[str, type], kind: str) -> Callable[[ClassT], ClassT]:
    """A class decorator adding a class to `registry` under its `name`; a name taken by another
    class is an error (re-registering the same class, as a module reload does, is not)."""

    def register(cls: ClassT) -> ClassT:
        if cls.name in registry and registry[cls.name] is not cls:
            raise ValueError(f"{kind} name {cls.name!r} is already registered by {registry[cls.name].__qualname__}")
        registry[cls.name] = cls
        return cls

    return register
