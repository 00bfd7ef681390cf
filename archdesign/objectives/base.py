"""The interface every training-free objective implements, and the registry of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archdesign.errors import InputError
from archdesign.spec import ArchSpec


class Objective(ABC):
    """A training-free score of an architecture: larger is better.

    ``score`` must be a pure function of the spec (and the objective's own settings), so
    it is safe to call from concurrent workers and may be memoized.
    """

    name: str = ""

    @abstractmethod
    def score(self, spec: ArchSpec) -> float:
        """The score of ``spec``."""

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        """The score and its parts, as plain data (for ``archdesign score --json``)."""
        return {"score": self.score(spec)}

    def settings(self) -> dict[str, Any]:
        """The objective's settings, as plain data (for provenance in exported designs)."""
        return {}

    def validation(self) -> dict[str, Any] | None:
        """How well the objective ranked trained networks when it was made (a fitted
        objective's cross-validated rank agreement), or None when it came with none."""
        return None


def _deepmad(**kwargs: Any) -> Objective:
    from archdesign.objectives.deepmad import DeepMAD

    return DeepMAD(**kwargs)


def _zen(**kwargs: Any) -> Objective:
    from archdesign.objectives.zen import ZenNAS

    return ZenNAS(**kwargs)


def _naswot(**kwargs: Any) -> Objective:
    from archdesign.objectives.naswot import NASWOT

    return NASWOT(**kwargs)


def _synflow(**kwargs: Any) -> Objective:
    from archdesign.objectives.synflow import SynFlow

    return SynFlow(**kwargs)


def _size(figure: str) -> Callable[..., Objective]:
    def factory() -> Objective:
        from archdesign.objectives.size import SizeObjective

        return SizeObjective(figure)

    return factory


# name -> factory; factories import lazily so that DeepMAD does not pull in torch.
_OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "deepmad": _deepmad, "zen": _zen, "naswot": _naswot, "synflow": _synflow,
    "flops": _size("flops"), "params": _size("params"), "activations": _size("activations"),
}

FITTED = "fitted"  # a fitted objective's name; made from its terms or its YAML file


def describe(objective: Objective, label: str | None = None) -> str:
    """``label`` (default: the name), with the rank agreement it came with, if any."""
    text = label or objective.name
    checked = objective.validation() or {}
    tau = checked.get("loo_kendall_tau")
    if tau is None:
        return text
    source = f" of {checked['file']}" if checked.get("file") else ""
    return (f"{text} (fitted; leave-one-out Kendall tau {tau:.3f} on {checked.get('n', '?')} "
            f"trained networks{source})")


def list_objectives() -> list[str]:
    """The registered objectives, each usable with its default settings."""
    return sorted(_OBJECTIVES)


def is_fitted_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or Path(name).is_file()


def get_objective(name: str, **settings: Any) -> Objective:
    """A registered objective by name, configured with ``settings``; ``"fitted"`` with its
    terms, or the path of a fitted objective's YAML file (``archdesign score --fit``)."""
    from archdesign.objectives.fitted import FittedObjective, load_fitted

    if name in _OBJECTIVES:
        try:
            return _OBJECTIVES[name](**settings)
        except TypeError as exc:
            raise InputError(f"objective {name!r}: {exc}") from None
    if name == FITTED:
        return FittedObjective(**settings)
    if is_fitted_file(name):
        if settings:
            raise InputError(f"objective {name!r}: a fitted objective file takes no settings, "
                             f"got {sorted(settings)}")
        return load_fitted(name)
    raise InputError(f"unknown objective {name!r}; known objectives: {list_objectives()}, "
                     f"or the YAML file of a fitted one (archdesign score --fit)")
