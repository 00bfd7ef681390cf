"""What a search computes: :class:`SearchConfig`, validated on construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from archdesign.cost import DTYPE_BYTES
from archdesign.errors import InputError
from archdesign.evaluate import EvalConfig
from archdesign.metrics import BUDGET_NAMES, METRICS, OBJECTIVE_NAMES, check_metric, parse_quantity
from archdesign.search.strategies import STRATEGIES, Strategy, get_strategy

DEFAULT_OBJECTIVES: tuple[str, ...] = ("score", "latency")


@dataclass(frozen=True)
class SearchConfig:
    """What a search computes (execution options such as workers are not part of it)."""

    space: str
    hardware: str
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    budgets: Mapping[str, float] = field(default_factory=dict)
    strategy: str = "mp+nsga2"
    trials: int = 3000
    seed: int = 0
    batch: int = 1
    dtype: str | None = None
    latency_model: str | None = None
    score: str = "deepmad"
    population: int = 50
    measure: int = 0  # number of front candidates whose latency is measured (0: none)
    storage: str | None = None  # an RDB URL; None: the run directory's journal file

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "budgets", dict(self.budgets))
        if not self.objectives:
            raise InputError(f"--objectives: give at least one of {list(OBJECTIVE_NAMES)}")
        for name in self.objectives:
            check_metric(name, OBJECTIVE_NAMES, "--objectives")
        if len(set(self.objectives)) != len(self.objectives):
            raise InputError(f"--objectives: {list(self.objectives)} names an objective twice")
        for name, value in self.budgets.items():
            check_metric(name, BUDGET_NAMES, "budget")
            parse_quantity(name, value)
        check_metric(self.strategy, STRATEGIES, "--strategy")
        for key, low in (("trials", 1), ("batch", 1), ("population", 2), ("measure", 0),
                         ("seed", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"--{key}: expected an integer >= {low}, got {value!r}")
        if self.dtype is not None and self.dtype not in DTYPE_BYTES:
            raise InputError(f"--dtype: {self.dtype!r} is not one of {sorted(DTYPE_BYTES)}")
        if self.plan.mp_seeded and "score" not in self.objectives:
            raise InputError(f"--strategy {self.strategy}: the MP designer maximizes the "
                             f"score, so --objectives must include score")

    @property
    def plan(self) -> Strategy:
        """The strategy itself (``strategy`` is its name)."""
        return get_strategy(self.strategy)

    @property
    def eval_config(self) -> EvalConfig:
        return EvalConfig(self.space, self.hardware, self.batch, self.dtype,
                          self.latency_model, self.score)

    @property
    def maximize(self) -> list[bool]:
        return [METRICS[m].maximize for m in self.objectives]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        data["budgets"] = dict(self.budgets)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> SearchConfig:
        allowed = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise InputError(f"{source}: unknown keys {unknown}; allowed keys: {allowed}")
        for key in ("space", "hardware"):
            if key not in data:
                raise InputError(f"{source}: missing required key {key!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"{source}: {exc}") from None
