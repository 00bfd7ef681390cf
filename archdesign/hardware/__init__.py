"""Hardware profiles and latency models.

A :class:`HardwareProfile` is a data file; :func:`model_for` gives its latency model
(roofline, measured lookup table, or fitted regressor) behind one interface,
:class:`LatencyModel`. Importers read published tables; :mod:`.measure` profiles the local
machine; :mod:`.validate` reports predicted against measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archdesign._package import lazy_exports

if TYPE_CHECKING:
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

# exported name -> the module that defines it; imported on first use, so reading a
# profile (``archdesign hardware``) does not load the models' scipy and threadpoolctl
_EXPORTS: dict[str, str] = {
    "FittedModel": "archdesign.hardware.models",
    "FusionRules": "archdesign.hardware.kernels",
    "HardwareProfile": "archdesign.hardware.profile",
    "LatencyModel": "archdesign.hardware.models",
    "ProfileError": "archdesign.hardware.profile",
    "RooflineModel": "archdesign.hardware.models",
    "TableModel": "archdesign.hardware.models",
    "block_kernels": "archdesign.hardware.kernels",
    "fuse": "archdesign.hardware.kernels",
    "get_profile": "archdesign.hardware.profile",
    "list_profiles": "archdesign.hardware.profile",
    "load_profile": "archdesign.hardware.profile",
    "metrics": "archdesign.hardware.validate",
    "model_for": "archdesign.hardware.models",
    "network_kernels": "archdesign.hardware.kernels",
    "validate_profile": "archdesign.hardware.validate",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
