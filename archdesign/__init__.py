"""archdesign: hardware-aware neural architecture design."""

from __future__ import annotations

from archdesign.build import build
from archdesign.cost import Cost, cost, cost_by_layer, cost_by_stage
from archdesign.layers import Layer, blocks, graph, layers
from archdesign.spec import ArchSpec, HeadSpec, SpecError, StageSpec, StemSpec, load_spec

__version__ = "0.1.0"

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
