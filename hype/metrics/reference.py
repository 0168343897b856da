"""Importing reference implementations (pytorch-fid, torch-fidelity) offline, for tests and benchmarks.

They import torchvision at module top level, only for image loading and network definitions hype never
touches, and PyPI's torchvision cannot be installed beside this torch build. While one reference
function is imported, a permissive stand-in for torchvision sits on the import path; it is removed
afterwards so nothing else can see it. Install them with
``pip install --no-deps pytorch-fid prdc torch-fidelity``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any


class _StubModule(types.ModuleType):
    """Any attribute is a further stub: capitalised names are classes (so that
    ``class X(torchvision.models.inception.InceptionA)`` works), others modules."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name[:1].isupper():
            value: Any = type(name, (), {"__init__": lambda self, *a, **k: None})
        else:
            value = _StubModule(f"{self.__name__}.{name}")
            value.__path__ = []
        setattr(self, name, value)
        return value


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):  # noqa: ANN001
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):  # noqa: ANN001
        mod = _StubModule(spec.name)
        mod.__path__ = []
        mod.__version__ = "0.0.0-stub"
        return mod

    def exec_module(self, module):  # noqa: ANN001
        pass


def import_with_torchvision_stub(module: str, attr: str) -> Any:
    """``from module import attr`` with torchvision stubbed if it is absent; ModuleNotFoundError if the
    reference package itself is not installed."""
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        raise ModuleNotFoundError(f"{top} not installed (pip install --no-deps pytorch-fid prdc torch-fidelity)", name=top)
    if importlib.util.find_spec("torchvision") is not None:
        return getattr(importlib.import_module(module), attr)
    finder = _StubFinder()
    sys.meta_path.insert(0, finder)
    try:
        return getattr(importlib.import_module(module), attr)
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
