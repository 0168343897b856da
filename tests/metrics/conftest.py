"""Shared fixtures for the metrics tests.

The reference packages (pytorch-fid, torch-fidelity) import torchvision at
module top level, only for image loading and network definitions we never
touch. torchvision from PyPI cannot be installed beside this torch build, so
``import_with_torchvision_stub`` imports a single reference function while a
permissive stand-in for torchvision sits in ``sys.modules``, and removes the
stand-in afterwards so no other test can see it. Install the reference
packages with ``pip install --no-deps pytorch-fid prdc torch-fidelity``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest


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
    """``from module import attr`` with torchvision stubbed if it is absent."""
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        pytest.skip(f"{top} not installed (pip install --no-deps pytorch-fid prdc torch-fidelity)")
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


@pytest.fixture(scope="session")
def reference_import() -> Callable[[str, str], Any]:
    return import_with_torchvision_stub


@pytest.fixture(scope="session")
def inception():
    """The packaged Inception on CPU, loaded once (0.5 s, 87 MB)."""
    from hype.metrics.features import load_inception

    try:
        return load_inception(device="cpu")
    except FileNotFoundError as exc:  # WeightsNotFoundError
        pytest.skip(f"no Inception weights: {exc}")
