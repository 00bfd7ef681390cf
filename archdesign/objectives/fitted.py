"""A fitted objective: a non-negative combination of registered objectives, as data.

    score = Σ_k w_k·(s_k(spec) − mean_k) / std_k,   w_k ≥ 0

where s_k is a registered objective (with its settings) and mean_k, std_k standardize it
over the networks it was fitted on (``archdesign score --fit``, see
:mod:`archdesign.objectives.validate`). It is stored as a YAML file of plain numbers (never a
pickle), with the rank agreement it reached on held-out networks; ``get_objective(PATH)``
loads it wherever an objective name is accepted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archdesign.errors import InputError
from archdesign.objectives.base import FITTED, Objective, get_objective
from archdesign.spec import ArchSpec

FORMAT_KEY = "archdesign_fitted_objective"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Term:
    """One registered objective of the combination, its standardization and weight."""

    objective: str
    mean: float
    std: float
    weight: float
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.objective == FITTED or self.objective.endswith((".yaml", ".yml")):
            raise InputError(f"fitted objective term {self.objective!r}: a term must be a "
                             f"registered objective, not a fitted one")
        for key in ("mean", "std", "weight"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value):
                raise InputError(f"fitted objective term {self.objective!r}: {key} must be a "
                                 f"finite number, got {value!r}")
        if self.std <= 0:
            raise InputError(f"fitted objective term {self.objective!r}: std must be > 0, "
                             f"got {self.std}")
        if self.weight < 0:
            raise InputError(f"fitted objective term {self.objective!r}: weight must be "
                             f">= 0, got {self.weight}")


def _term(data: Any, where: str) -> Term:
    if isinstance(data, Term):
        return data
    if not isinstance(data, dict):
        raise InputError(f"{where}: a term is a mapping (objective, mean, std, weight, "
                         f"settings), got {data!r}")
    unknown = set(data) - {"objective", "mean", "std", "weight", "settings"}
    missing = {"objective", "mean", "std", "weight"} - set(data)
    if unknown or missing:
        raise InputError(f"{where}: term keys: missing {sorted(missing)}, unknown "
                         f"{sorted(unknown)}")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict) or not isinstance(data["objective"], str):
        raise InputError(f"{where}: a term's objective is a name and its settings a mapping")
    return Term(data["objective"], data["mean"], data["std"], data["weight"], dict(settings))


class FittedObjective(Objective):
    """Σ w_k·standardized s_k over ``terms``; ``validation`` is how it was checked."""

    name = FITTED

    def __init__(self, terms: list[Any] | tuple[Any, ...],
                 validation: dict[str, Any] | None = None) -> None:
        if not terms:
            raise InputError("fitted objective: needs at least one term")
        self.terms = tuple(_term(t, "fitted objective") for t in terms)
        if not any(t.weight > 0 for t in self.terms):
            raise InputError("fitted objective: every weight is 0, so it ranks nothing")
        self._validation = dict(validation) if validation else None
        self._scorers = [get_objective(t.objective, **t.settings) for t in self.terms]

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        parts = {}
        total = 0.0
        for term, scorer in zip(self.terms, self._scorers, strict=True):
            if term.weight == 0:
                continue
            raw = scorer.score(spec)
            standardized = (raw - term.mean) / term.std
            total += term.weight * standardized
            parts[term.objective] = {"score": raw, "standardized": standardized,
                                     "weight": term.weight}
        return {"score": total, "terms": parts}

    def score(self, spec: ArchSpec) -> float:
        return float(self.details(spec)["score"])

    def settings(self) -> dict[str, Any]:
        return {"terms": [asdict(t) for t in self.terms], "validation": self._validation}

    def validation(self) -> dict[str, Any] | None:
        return self._validation

    def save(self, path: str | Path) -> None:
        import yaml

        from archdesign.runs import atomic_write_text

        text = yaml.safe_dump({FORMAT_KEY: FORMAT_VERSION, **self.settings()},
                              sort_keys=False)
        atomic_write_text(Path(path), text)


def load_fitted(path: str | Path) -> FittedObjective:
    """The fitted objective of a YAML file written by :meth:`FittedObjective.save`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such fitted objective file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read a fitted objective ({exc})") from None
    if not isinstance(data, dict) or data.get(FORMAT_KEY) != FORMAT_VERSION:
        raise InputError(f"{path}: not a fitted objective file (expected the key "
                         f"{FORMAT_KEY}: {FORMAT_VERSION}; write one with archdesign score "
                         f"--fit)")
    unknown = set(data) - {FORMAT_KEY, "terms", "validation"}
    if unknown:
        raise InputError(f"{path}: unknown keys {sorted(unknown)}; allowed: terms, validation")
    terms = data.get("terms")
    validation = data.get("validation")
    if not isinstance(terms, list) or not (validation is None or isinstance(validation, dict)):
        raise InputError(f"{path}: 'terms' must be a list and 'validation' a mapping")
    try:
        return FittedObjective([_term(t, f"{path}: terms[{i}]") for i, t in enumerate(terms)],
                               validation)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith(str(path)) else f"{path}: {message}") \
            from None
