"""Importing only what a short command uses: modules run on first use, packages kept hidden, environment defaults
set while a library loads. `medtl convert` of a small series spends most of its time importing."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType


class _NamedFinder(importlib.abc.MetaPathFinder):
    """A finder for the modules ``names`` only."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)


class _LazyFinder(_NamedFinder):
    """Finds ``names`` as the other finders do, but with loaders that run a module on its first attribute access."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


class _NotFound(_NamedFinder):
    """Finds the packages ``names`` (and their modules) missing."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@contextlib.contextmanager
def _first_on_meta_path(finder: importlib.abc.MetaPathFinder) -> Iterator[None]:
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def not_found(names: Sequence[str]) -> contextlib.AbstractContextManager[None]:
    """While inside, importing the packages ``names`` (not yet imported) fails as if they were not installed."""
    return _first_on_meta_path(_NotFound(names))


def imported_on_first_use(names: Sequence[str]) -> contextlib.AbstractContextManager[None]:
    """While inside, importing one of ``names`` (not yet imported) yields a module that runs on first use."""
    return _first_on_meta_path(_LazyFinder(names))


@contextlib.contextmanager
def environment_defaults(values: dict[str, str]) -> Iterator[None]:
    """While inside, the environment variables ``values`` that are not set have these values."""
    added = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
