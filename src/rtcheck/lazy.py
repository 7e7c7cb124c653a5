"""A package's public names imported from their module on first use (PEP 562).

``import rtcheck`` (and so every command, ``--help`` included) must not import numpy, pydicom
or jinja2 before a name that needs them is used: the package's ``__init__`` lists where each
public name lives and hands :func:`attribute_loader`'s function to Python as its module
``__getattr__``. Standard library only (floor 0 of the house).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def attribute_loader(package: str, homes: Mapping[str, str], namespace: dict[str, Any],
                     submodules: bool = False) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: a name of ``homes`` (public name -> the module
    defining it) is imported from there on first use and kept in ``namespace`` (the
    package's ``globals()``), so it is looked up once. With ``submodules``, another public
    name is tried as a sub-module (``rtcheck.radiobiology``).
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is not None:
            value = getattr(importlib.import_module(home), name)
            namespace[name] = value
            return value
        if submodules and not name.startswith("_"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
