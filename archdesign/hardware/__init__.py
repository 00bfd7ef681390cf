"""Hardware profiles and latency models.

A :class:`HardwareProfile` is a data file; :func:`model_for` gives its latency model
(roofline, measured lookup table, or fitted regressor) behind one interface,
:class:`LatencyModel`. Importers read published tables; :mod:`.measure` profiles the local
machine; :mod:`.validate` reports predicted against measured.
"""

from __future__ import annotations

from archdesign.hardware.kernels import FusionRules, block_kernels, fuse, network_kernels
from archdesign.hardware.models import (
    FittedModel,
    LatencyModel,
    RooflineModel,
    TableModel,
    model_for,
)
from archdesign.hardware.profile import (
    HardwareProfile,
    ProfileError,
    get_profile,
    list_profiles,
    load_profile,
)
from archdesign.hardware.validate import metrics, validate_profile

__all__ = [
    "FittedModel",
    "FusionRules",
    "HardwareProfile",
    "LatencyModel",
    "ProfileError",
    "RooflineModel",
    "TableModel",
    "block_kernels",
    "fuse",
    "get_profile",
    "list_profiles",
    "load_profile",
    "metrics",
    "model_for",
    "network_kernels",
    "validate_profile",
]
