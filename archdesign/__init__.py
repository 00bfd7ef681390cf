"""archdesign: hardware-aware neural architecture design.

The exported names are imported on first use, so ``import archdesign`` (which every CLI
command does) costs nothing, and only ``archdesign.build`` brings in torch.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from archdesign._package import lazy_exports

if TYPE_CHECKING:
    from archdesign.build import build
    from archdesign.cost import Cost, cost, cost_by_layer, cost_by_stage
    from archdesign.layers import Layer, blocks, graph, layers
    from archdesign.spec import ArchSpec, HeadSpec, SpecError, StageSpec, StemSpec, load_spec

__version__ = "0.1.0"

# exported name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ArchSpec": "archdesign.spec",
    "Cost": "archdesign.cost",
    "HeadSpec": "archdesign.spec",
    "Layer": "archdesign.layers",
    "SpecError": "archdesign.spec",
    "StageSpec": "archdesign.spec",
    "StemSpec": "archdesign.spec",
    "blocks": "archdesign.layers",
    "build": "archdesign.build",
    "cost": "archdesign.cost",
    "cost_by_layer": "archdesign.cost",
    "cost_by_stage": "archdesign.cost",
    "graph": "archdesign.layers",
    "layers": "archdesign.layers",
    "load_spec": "archdesign.spec",
}

__all__ = [
    "ArchSpec",
    "Cost",
    "HeadSpec",
    "Layer",
    "SpecError",
    "StageSpec",
    "StemSpec",
    "__version__",
    "blocks",
    "build",
    "cost",
    "cost_by_layer",
    "cost_by_stage",
    "graph",
    "layers",
    "load_spec",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule binds it on its package: loading archdesign.cost would set
        # ``archdesign.cost`` to the module, hiding the exported function of the same name
        # (cost, layers, build). Bind the function instead, as the eager
        # ``from archdesign.cost import cost`` used to.
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
