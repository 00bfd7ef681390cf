"""How far a profile can be trusted: what it was validated on, if anything.

Read by ``archdesign hardware`` (and by the warning of ``latency``, ``search`` and
``pareto``) from the profile's own ``validation`` figures; cheap to import (no numpy
models, no scipy).
"""

from __future__ import annotations

import logging
from typing import Any

from archdesign.hardware.profile import HardwareProfile, ProfileError, get_profile

logger = logging.getLogger(__name__)


def validation_summary(profile: HardwareProfile) -> dict[str, Any] | None:
    """How a profile was checked: within ±10%, n, level and source; None when never."""
    v = profile.validation
    for key, level in (("held_out", "held-out networks"),
                       ("cross_validated", "cross-validated networks")):
        figures = v.get(key)
        if isinstance(figures, dict) and "within_10pct" in figures:
            return {"level": level, "within_10pct": figures["within_10pct"],
                    "n": figures.get("n"), "source": v.get("source", "")}
    networks = v.get("networks")
    if isinstance(networks, dict):
        for figures in networks.values():
            if isinstance(figures, dict) and "within_10pct" in figures:
                return {"level": "held-out networks", "within_10pct": figures["within_10pct"],
                        "n": figures.get("n"), "source": v.get("source", "profile measure")}
    kernels = v.get("kernels")
    if isinstance(kernels, dict):
        kind = profile.model.kind if profile.model is not None else "roofline"
        figures = kernels.get(kind) or next(iter(kernels.values()), None)
        if isinstance(figures, dict) and "within_10pct" in figures:
            return {"level": "held-out kernels", "within_10pct": figures["within_10pct"],
                    "n": figures.get("n"), "source": profile.source}
    return None


def warn_if_unvalidated(profile: HardwareProfile) -> str | None:
    """A warning (also logged) when ``profile`` was never checked against measurements."""
    if validation_summary(profile) is not None:
        return None
    message = (f"profile {profile.name!r} was never checked against measurements (a "
               f"datasheet roofline, often off by 2x): calibrate it with `archdesign profile "
               f"calibrate --base {profile.name} --measurements FILE`")
    logger.warning(message)
    return message


def check_hardware(hardware: str, measure: bool = False) -> None:
    """What ``search`` and ``pareto`` ask of their profile: the warning when it was never
    validated, and with ``measure`` (``search --measure``, which times front designs in ONNX
    Runtime on this CPU) an InputError unless the profile is of this machine."""
    try:
        profile = get_profile(hardware)
    except ProfileError:
        if measure:
            raise
        logger.warning("profile %r not found: cannot say whether its latencies were ever "
                       "checked against measurements", hardware)
        return
    warn_if_unvalidated(profile)
    if measure:
        from archdesign.hardware.runtime import require_this_machine

        require_this_machine(profile, "cpu", "onnxruntime")
