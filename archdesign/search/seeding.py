"""Seeds from the mathematical program: the MP designer swept across a budget range.

The seeding is bounded by work (relaxations solved per sweep level), never by wall-clock
time, so a seed gives the same trials on any machine under any load.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from archdesign.errors import InputError
from archdesign.metrics import format_metric
from archdesign.search.config import SearchConfig
from archdesign.search.space import SpaceExtent
from archdesign.spaces import Value

logger = logging.getLogger(__name__)

# Budget levels of the MP sweep that seeds the mp and mp+nsga2 strategies. The front is made
# of the MP's designs: on MobileNet (x86-avx2, latency <= 4 ms) 148 of the 149 designs on
# the MP's ways of 8 levels lie on the search's front, and in a 1,000-trial mp+nsga2 run
# none of NSGA-II's 900 offspring joined it; so the sweep is dense (16 levels: hypervolume
# 0.4083 -> 0.4150 at 1,000 trials) and its designs may take many of the trials.
MP_SWEEP_POINTS = 16
# At most this many seeds in all (the sweep's optima, then designs from the MP fronts), and
# at most this fraction of the trials.
MP_FRONT_SEEDS = 400
MP_SEED_FRACTION = 0.4
# Relaxations the MP designer solves at each sweep level.
# (MobileNet's levels on x86-avx2 close their 1% gap in 8-24 nodes.)
MP_SEED_NODES = 40


# Search metric -> the MP's budget field, for the metrics its relaxation models exactly
# (the search's "memory" is peak activations plus weights: not one of them).
_MP_BUDGETS = {"flops": "flops", "params": "params", "activations": "activations",
               "latency": "latency_ms", "rho": "rho"}


def mp_seeds(config: SearchConfig, extent: SpaceExtent, count: int = MP_SWEEP_POINTS,
             max_nodes: int = MP_SEED_NODES) -> list[dict[str, Value]]:
    """Designs of the mathematical program swept across a budget range.

    The sweep runs over the search's first cost objective that the MP's relaxation models
    exactly (latency under a roofline model, FLOPs, params, activations; FLOPs otherwise),
    with budgets log-spaced from the cheapest network to the largest one seen that meets
    the user's budgets, which the MP also respects where it models them. Each design's
    parameters seed the study and are judged by the search like any trial's.
    A sweep point the MP cannot solve is logged and skipped: the sampler fills the front
    anyway. Each level's MP stops after ``max_nodes`` relaxations (no time limit). The MP
    solves the search's own problem (without the kernel-to-feature-map rule, which the
    search does not impose). A space the designer enumerates (RegNet: every network of
    every assignment counted, up to minutes a level with a latency model) is not swept:
    the sampler starts alone, as it does where the MP fails.
    """
    from archdesign.hardware import get_profile, model_for
    from archdesign.hardware.models import RooflineModel
    from archdesign.optimize import mp
    from archdesign.optimize.choices import shared_models
    from archdesign.optimize.problem import Budgets, DesignRules
    from archdesign.optimize.regnet import enumerable
    from archdesign.spaces import get_space

    if enumerable(get_space(config.space)):
        logger.info("MP sweep: skipped: the designer enumerates space %s exactly (minutes for "
                    "a sweep; archdesign design certifies one budget); the sampler starts "
                    "alone", config.space)
        return []
    roofline = isinstance(model_for(get_profile(config.hardware), config.latency_model),
                          RooflineModel)
    modeled = [m for m in _MP_BUDGETS if m != "latency" or roofline]
    swept = next((m for m in config.objectives if m in modeled), "flops")
    low = extent.minimum[swept]
    high = extent.maximum[swept]
    if config.budgets:
        # the level at which each sampled network, scaled, would meet the tightest budget
        reach = [m[swept] * min(v / m[k] for k, v in config.budgets.items())
                 for m in extent.samples]
        high = float(np.clip(np.median(reach), low, high))
    levels = np.geomspace(low * 1.05, high, count) if high > low * 1.05 else np.array([high])
    native = {_MP_BUDGETS[k]: v for k, v in config.budgets.items() if k in modeled}
    hardware = config.hardware if "latency_ms" in native or swept == "latency" else None
    dtype = config.dtype or _profile_precision(config.hardware)
    seeds: list[dict[str, Value]] = []
    explored: list[dict[str, Value]] = []  # designs on each MP's way, non-dominated
    failures: list[str] = []
    started = time.perf_counter()
    with shared_models():  # the space's models do not depend on the budgets
        for level in levels.tolist():
            field = _MP_BUDGETS[swept]
            budgets = Budgets(**{**native, field: min(level, native.get(field, math.inf))},
                              batch=config.batch, dtype=dtype)
            try:
                found = mp.design(config.space, budgets, config.score, hardware,
                                  rules=DesignRules(monotone_widths=False, max_kernel_ratio=None),
                                  tolerance=0.01,
                                  max_nodes=max_nodes, latency_model=config.latency_model,
                                  front_of=field)
            except InputError as exc:
                logger.info("MP sweep: no design at %s <= %s: %s", swept,
                            format_metric(swept, level), exc)
                continue
            except Exception as exc:  # the seeding is an aid: its failure must not stop a search
                failures.append(f"{type(exc).__name__}: {exc}")
                logger.info("MP sweep: the MP designer failed at %s <= %s (%s)", swept,
                            format_metric(swept, level), failures[-1])
                continue
            if found.params not in seeds:
                seeds.append(dict(found.params))
            explored.extend(p for p in found.front if p != found.params)
    # the optima first, then the explored fronts evenly thinned
    room = max(0, min(int(config.trials * MP_SEED_FRACTION), MP_FRONT_SEEDS) - len(seeds))
    known = {tuple(sorted(p.items())) for p in seeds}
    unique = []
    for p in explored:
        key = tuple(sorted(p.items()))
        if key not in known:
            known.add(key)
            unique.append(p)
    if unique and room:
        picks = np.unique(np.linspace(0, len(unique) - 1, min(room, len(unique))).round())
        seeds.extend(unique[int(i)] for i in picks)
    logger.info("MP sweep: %d designs from %d budget levels in %.1f s", len(seeds),
                len(levels), time.perf_counter() - started)
    if failures:
        logger.warning("the MP designer failed at %d of %d budget levels (first: %s)",
                       len(failures), len(levels), failures[0])
    if not seeds:
        logger.warning("the MP designer found no design to seed the search; continuing with "
                       "the sampler alone")
    return seeds


def _profile_precision(hardware: str) -> str:
    from archdesign.hardware import get_profile

    return get_profile(hardware).precision
