"""Published architectures by name: spec files in ``archdesign/zoo/``.

A zoo file is either a full spec or a point of a search space
(``{space: regnet, params: {...}}``), so a RegNet is written once, as its design
parameters, and decoded by the same generator a search uses.

A name may carry an input resolution: ``resnet50@160`` is ResNet-50 at 160x160.
"""

from __future__ import annotations

from functools import cache

import yaml

from archdesign._package import builtin_dir
from archdesign.errors import InputError
from archdesign.spec import ArchSpec, SpecError

ZOO_DIR = builtin_dir("zoo")


def list_archs() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))


@cache
def get_arch(name: str) -> ArchSpec:
    """The spec of a zoo architecture (``resnet50``, ``regnety_400mf``, ...), at its
    published resolution or, for ``NAME@RES``, at ``RES``."""
    base, at, res = name.partition("@")
    spec = _load(base)
    if not at:
        return spec
    if not (res.isascii() and res.isdigit()):
        raise InputError(f"{name!r}: the resolution after '@' must be a positive integer, "
                         f"got {res!r}")
    try:
        return ArchSpec.from_dict({**spec.to_dict(), "resolution": int(res), "name": name},
                                  name)
    except SpecError as exc:
        raise InputError(str(exc)) from None


def _load(name: str) -> ArchSpec:
    path = ZOO_DIR / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"unknown architecture {name!r}; known: {list_archs()}")
    data = yaml.safe_load(path.read_text())
    if "space" in data:
        from archdesign.spaces import get_space

        spec = get_space(data["space"]).spec(data.get("params", {}))
        return ArchSpec.from_dict({**spec.to_dict(), "name": name}, str(path))
    try:
        return ArchSpec.from_dict(data, str(path))
    except SpecError as exc:
        raise InputError(str(exc)) from None
