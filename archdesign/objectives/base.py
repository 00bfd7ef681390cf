"""The interface every training-free objective implements, and the registry of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
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


def _deepmad(**kwargs: Any) -> Objective:
    from archdesign.objectives.deepmad import DeepMAD

    return DeepMAD(**kwargs)


def _zen(**kwargs: Any) -> Objective:
    from archdesign.objectives.zen import ZenNAS

    return ZenNAS(**kwargs)


# name -> factory; factories import lazily so that DeepMAD does not pull in torch.
_OBJECTIVES: dict[str, Callable[..., Objective]] = {"deepmad": _deepmad, "zen": _zen}


def list_objectives() -> list[str]:
    return sorted(_OBJECTIVES)


def get_objective(name: str, **settings: Any) -> Objective:
    """A registered objective by name, configured with ``settings``."""
    try:
        factory = _OBJECTIVES[name]
    except KeyError:
        raise InputError(f"unknown objective {name!r}; known objectives: "
                         f"{list_objectives()}") from None
    return factory(**settings)
