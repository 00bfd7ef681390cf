"""Package plumbing: where the built-in data files are, and lazily imported exports."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

_PACKAGE = Path(__file__).resolve().parent

DataDir = Literal["search_spaces", "hardware_profiles", "zoo"]


def builtin_dir(name: DataDir) -> Path:
    """The directory of the built-in data files ``name``.

    A wheel carries ``search_spaces/`` and ``hardware_profiles/`` inside the package
    (pyproject's ``package-dir``); a source checkout, or an editable install of one, has
    them at the repository root next to the package. ``zoo/`` is inside the package in
    both.
    """
    packaged = _PACKAGE / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) for ``exports`` (exported name
    -> the module defining it): a name's module is imported when the name is first read,
    so importing the package does not import what its exports need."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return getattr_, dir_
