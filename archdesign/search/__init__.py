"""Multi-objective architecture search with Optuna (see :mod:`archdesign.search.driver`).

``config``: what a search computes; ``strategies``: the registry of samplers and how each
proposes trials; ``space``: distributions, the space's extent and the hypervolume frame;
``seeding``: the MP designer's seeds; ``driver``: ask, evaluate, tell, record.
"""

from archdesign.metrics import binding, constraints, format_metric, parse_quantity
from archdesign.search.config import DEFAULT_OBJECTIVES, SearchConfig
from archdesign.search.driver import (
    SearchProgress,
    SearchResult,
    measure_front,
    run_search,
)
from archdesign.search.driver import _config_document as _config_document
from archdesign.search.seeding import MP_FRONT_SEEDS, MP_SEED_NODES, MP_SWEEP_POINTS, mp_seeds
from archdesign.search.space import (
    FRAME_FILE,
    SpaceExtent,
    check_budgets,
    distribution,
    distributions,
    frame_for,
    make_frame,
    run_frame,
    space_extent,
)
from archdesign.search.strategies import (
    REGISTRY,
    STRATEGIES,
    Strategy,
    get_strategy,
    make_sampler,
    session_seed,
)

__all__ = [
    "DEFAULT_OBJECTIVES", "FRAME_FILE", "MP_FRONT_SEEDS", "MP_SEED_NODES", "MP_SWEEP_POINTS",
    "REGISTRY", "STRATEGIES", "SearchConfig", "SearchProgress", "SearchResult", "SpaceExtent",
    "Strategy", "binding", "check_budgets", "constraints", "distribution", "distributions",
    "format_metric", "frame_for", "get_strategy", "make_frame", "make_sampler", "measure_front",
    "mp_seeds", "parse_quantity", "run_frame", "run_search", "session_seed", "space_extent",
]
