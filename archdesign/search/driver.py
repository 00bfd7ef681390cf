"""Multi-objective architecture search with Optuna, driven by ask/tell from one driver.

The driver alone samples and tells, in trial-number order, in batches whose size depends
only on the strategy; evaluation (in process or on Ray, see :mod:`archdesign.evaluate`)
is a pure function of the parameters. The same seed therefore gives the same trials with
one worker or many.

Storage: the sampler works on an in-memory study; each told trial is appended to the
durable study (a journal file in the run directory, or ``--storage URL``) as one record,
in trial-number order. A journal op costs an fsync, and an Optuna trial written through
a live storage takes one op per parameter and attribute (about 35 fsyncs, ~75 ms, for a
MobileNet trial); one record per trial is ~20x faster and leaves nothing half-written.
On resume the durable trials are loaded back into a fresh in-memory study and the search
continues to the requested number of trials.

Constraints use Optuna's current API (``Trial.set_constraint``): one constraint per
budget, ``value / budget - 1`` (feasible when <= 0), which NSGA-II, TPE and GP all read.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from archdesign.errors import InputError
from archdesign.evaluate import (
    Evaluation,
    Evaluator,
    LocalEvaluator,
    RayEvaluator,
    check_ray_address,
    make_evaluator,
)
from archdesign.metrics import constraints, feasible
from archdesign.pareto import Frame, FrontTracker
from archdesign.runs import STUDY_NAME, TRIAL_ATTR, RunDir, RunError, open_rdb
from archdesign.search.config import SearchConfig
from archdesign.search.seeding import MP_SWEEP_POINTS, mp_seeds
from archdesign.search.space import (
    FRAME_FILE,
    SpaceExtent,
    check_budgets,
    distributions,
    make_frame,
    run_frame,
    space_extent,
    store_frame,
)
from archdesign.search.strategies import session_seed
from archdesign.spaces import SpaceError, get_space

logger = logging.getLogger(__name__)

# Batches in a row whose every sample falls outside the space's feasible set before the
# search gives up (those samples are not spent as trials, so nothing else would stop it).
MAX_INFEASIBLE_BATCHES = 100


@dataclass(frozen=True)
class SearchProgress:
    done: int
    total: int
    feasible: int
    pareto_size: int
    hypervolume: float


@dataclass(frozen=True)
class SearchResult:
    run_dir: RunDir
    done: int
    feasible: int
    pareto_size: int
    hypervolume: float
    evaluated: int  # by this session
    seconds: float
    reused: int = 0  # trials answered from the study: their network was evaluated before
    outside: int = 0  # samples outside the space's feasible set, not spent as trials


# -- the search ----------------------------------------------------------------------------


def _resolve_config(run: RunDir, config: SearchConfig, resume: bool) -> SearchConfig:
    if not run.exists():
        if resume:
            raise RunError(f"{run.path}: nothing to resume (no {run.config_path.name})")
        return config
    if not resume:
        raise RunError(f"{run.path}: already holds a search; pass --resume to continue it "
                       f"or choose another --run-dir")
    stored = SearchConfig.from_dict(run.read_config().get("search", {}), str(run.config_path))
    # The number of trials and of measured candidates may change; nothing else may.
    differ = [f.name for f in fields(SearchConfig)
              if f.name not in ("trials", "measure")
              and getattr(stored, f.name) != getattr(config, f.name)]
    if differ:
        stored_values = ", ".join(f"{k}={getattr(stored, k)!r}" for k in differ)
        raise RunError(f"{run.config_path}: --resume continues the stored search, but "
                       f"{differ} differ from it (stored: {stored_values})")
    recorded = run.recorded_trials()
    if config.trials < recorded:
        raise RunError(f"--trials {config.trials}: the run already records {recorded} "
                       f"trials; give --trials {recorded} or more to continue it")
    return replace(stored, trials=config.trials, measure=config.measure)


def _config_document(config: SearchConfig) -> dict[str, Any]:
    from archdesign import __version__
    from archdesign.objectives import get_objective

    scorer = get_objective(config.score)  # recorded as data: a fitted file may move
    return {"archdesign_version": __version__, "search": config.to_dict(),
            "score_objective": {"name": scorer.name, "settings": scorer.settings(),
                                "validation": scorer.validation()}}


def run_search(config: SearchConfig, run: RunDir, *, workers: int = 1,
               ray_address: str | None = None, resume: bool = False,
               on_progress: Callable[[SearchProgress], None] | None = None,
               evaluator: Evaluator | None = None,
               results_every_s: float = 5.0) -> SearchResult:
    """Run (or resume) a search in ``run`` until ``config.trials`` trials are recorded.

    ``evaluator``: evaluate with this one (kept open) instead of one made from
    ``workers`` and ``ray_address`` (closed at the end).
    """
    from archdesign.report import read_measured, summarize, write_results

    started = time.perf_counter()
    # Validate everything before the run directory is created or touched.
    given = _resolve_config(run, config, resume)
    config = run.with_sources(given)  # on resume: the run's copies where needed
    local = LocalEvaluator(config.eval_config)  # fails fast on a bad space or profile
    extent = space_extent(local, config.seed)
    check_budgets(config, extent)
    frame = make_frame(config, extent)
    if config.storage:
        open_rdb(config.storage)  # a bad URL fails before the run directory is made
    if evaluator is None and ray_address:
        check_ray_address(ray_address)
    with run.lock():
        given = _resolve_config(run, given, resume)
        run.store_sources(given)
        config = run.with_sources(given)
        run.write_config(_config_document(given))
        if resume and (run / FRAME_FILE).exists():
            frame = run_frame(run, config)  # the run's own, whatever this code would compute
        else:
            store_frame(run, frame)
        with run.logging_to_file():
            logger.info("search %s: %s", "resumed" if resume else "started", config.to_dict())
            own = evaluator is None
            evaluator = evaluator or make_evaluator(config.eval_config, workers, ray_address)
            try:
                counts, durable = _search_loop(config, run, evaluator, local, frame, extent,
                                               on_progress, results_every_s)
                trials = _finished(durable)
                if config.measure:
                    summary = summarize(trials, config, frame)
                    measure_front(run, summary, config, evaluator)
            finally:
                if own:
                    evaluator.close()
            summary = summarize(trials, config, frame, read_measured(run))
            write_results(run, summary)
            logger.info("search finished: %d trials, %d feasible, %d on the front, "
                        "hypervolume %.4f", summary.done, summary.feasible,
                        len(summary.front), summary.hypervolume)
    return SearchResult(run, summary.done, summary.feasible, len(summary.front),
                        summary.hypervolume, counts.evaluated, time.perf_counter() - started,
                        counts.reused, counts.outside)


def measure_front(run: RunDir, summary: Any, config: SearchConfig,
                  evaluator: Evaluator) -> None:
    """Measure the latency of up to ``config.measure`` front designs, spread along it.

    On Ray, timings run in actors holding the timer resource; in process, one by one.
    Results go to ``measured.json`` (trials already measured are kept, not redone).
    """
    from archdesign.evaluate import MeasureConfig, measure_on_ray, measure_specs
    from archdesign.report import MEASURED_FILE, read_measured
    from archdesign.spec import ArchSpec

    measured = read_measured(run)
    front = summary.front
    if not front:
        return
    picks = sorted({front[round(i)].trial for i in
                    np.linspace(0, len(front) - 1, min(config.measure, len(front)))})
    todo = [t for t in picks if t not in measured]
    if not todo:
        return
    specs = [ArchSpec.from_dict(summary.entry(t).spec) for t in todo]
    measure = MeasureConfig(batch=config.batch)
    logger.info("measuring the latency of %d front designs on this machine", len(specs))
    timings = (measure_on_ray(specs, measure) if isinstance(evaluator, RayEvaluator)
               else measure_specs(specs, measure))
    measured.update(dict(zip(todo, timings, strict=True)))
    run.write_text(MEASURED_FILE, json.dumps({str(k): v for k, v in sorted(measured.items())},
                                             indent=2) + "\n")


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    return sorted(trials, key=lambda t: t.number)


@dataclass
class _Counts:
    evaluated: int = 0
    reused: int = 0
    outside: int = 0


def _search_loop(config: SearchConfig, run: RunDir, evaluator: Evaluator,
                 local: LocalEvaluator, frame: Frame, extent: SpaceExtent,
                 on_progress: Callable[[SearchProgress], None] | None,
                 results_every_s: float) -> tuple[_Counts, Any]:
    """Ask, evaluate, tell until the trials are recorded.

    The driver decodes every asked trial (microseconds): a sample outside the space's
    feasible set is told FAIL to the sampler but neither evaluated nor recorded nor
    counted; one whose network was evaluated before (in this study or this batch) is
    answered with those figures. Evaluation is a pure function of the network, so both
    leave the trials exactly as evaluating would.
    """
    import optuna
    from optuna.trial import TrialState

    from archdesign.report import summarize, write_results

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna.study import StudyDirection

    directions = [StudyDirection.MAXIMIZE if m else StudyDirection.MINIMIZE
                  for m in config.maximize]
    durable = optuna.create_study(storage=run.storage(config.storage), study_name=STUDY_NAME,
                                  directions=directions, load_if_exists=True)
    if list(durable.directions) != directions:
        raise RunError(f"{run.path}: the stored study optimizes {durable.directions}, not "
                       f"{directions}")
    if durable.metric_names is None:  # optuna-dashboard labels the axes with them
        with warnings.catch_warnings():  # experimental in Optuna 5.0
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            durable.set_metric_names(list(config.objectives))
    recorded = _finished(durable)
    done = len(recorded)
    study = optuna.create_study(directions=directions,
                                sampler=config.plan.sampler(session_seed(config.seed, done),
                                                            config.population))
    study.add_trials(recorded)
    dists = distributions(get_space(config.space))
    tracker = FrontTracker(frame)
    feasible_count = 0
    for t in recorded:
        if feasible(t):
            feasible_count += 1
            tracker.add(t.number, _minimized(t.values, config.maximize))

    if config.plan.mp_seeded:
        seen = [t.params for t in recorded]
        for params in mp_seeds(config, extent, min(config.trials, MP_SWEEP_POINTS)):
            if params not in seen:
                study.enqueue_trial(params, skip_if_exists=True)

    from archdesign.spec import ArchSpec

    known: dict[ArchSpec, Evaluation] = {}
    for t in recorded:
        if t.state == TrialState.COMPLETE and "metrics" in t.user_attrs:
            spec = ArchSpec.from_dict(t.user_attrs["spec"])
            known[spec] = Evaluation(t.number, dict(t.params), dict(t.user_attrs["metrics"]),
                                     spec)
    counts = _Counts()
    barren = 0  # batches in a row with no sample in the feasible set
    per_batch = config.plan.batch_size(config.population)
    last_write = time.perf_counter()
    report = _progress_reporter(on_progress, config.trials)
    report(done, feasible_count, tracker)
    while done < config.trials:
        n = min(per_batch, config.trials - done)
        if config.plan.seeds_only:
            waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
            if waiting == 0:
                logger.info("strategy mp: all %d MP designs evaluated", done)
                break
            n = min(n, waiting)
        asked = [study.ask(dists) for _ in range(n)]
        specs: list[ArchSpec | None] = []
        first: dict[ArchSpec, Any] = {}  # a network new to the study -> its first trial
        for trial in asked:
            decoded: ArchSpec | None
            try:
                decoded = local.decode(trial.params)
            except SpaceError:
                decoded = None
            specs.append(decoded)
            if decoded is not None and decoded not in known and decoded not in first:
                first[decoded] = trial
        fresh = list(first.values())
        results = evaluator.evaluate([(t.number, t.params) for t in fresh], list(first))
        for trial, result in zip(fresh, results, strict=True):
            if result.number != trial.number:
                raise RuntimeError(f"evaluator returned trial {result.number} for "
                                   f"{trial.number}")
        counts.evaluated += len(fresh)
        by_number = {r.number: r for r in results}
        known.update((net, by_number[t.number]) for net, t in first.items()
                     if by_number[t.number].ok)
        barren = barren + 1 if all(s is None for s in specs) else 0
        if barren >= MAX_INFEASIBLE_BATCHES:
            raise InputError(f"space {config.space!r}: the {config.strategy} sampler drew "
                             f"{barren} batches in a row outside the space's feasible set")
        for trial, network in zip(asked, specs, strict=True):
            if network is None:  # the sampler learns it; the study does not spend a trial on it
                study.tell(trial, state=TrialState.FAIL)
                counts.outside += 1
                continue
            answer = by_number.get(trial.number)
            if answer is None:
                source = known.get(network) or by_number[first[network].number]
                answer = replace(source, number=trial.number, params=trial.params)
                counts.reused += 1
            frozen = _tell(study, trial, answer, config, record=done)
            durable.add_trial(frozen)  # one fsynced record: the trial is now safe
            done += 1
            if feasible(frozen):
                feasible_count += 1
                tracker.add(frozen.number, _minimized(frozen.values, config.maximize))
        report(done, feasible_count, tracker)
        if time.perf_counter() - last_write > results_every_s:
            write_results(run, summarize(_finished(durable), config, frame), plot=False)
            last_write = time.perf_counter()
    logger.info("%d trials evaluated, %d answered from the study (networks evaluated "
                "before), %d samples outside the space's feasible set not spent as trials",
                counts.evaluated, counts.reused, counts.outside)
    return counts, durable


def _tell(study: Any, trial: Any, result: Evaluation, config: SearchConfig,
          record: int) -> Any:
    """Tell the sampler's study; ``record`` is the trial's number in the stored study (the
    sampler's own numbering also counts samples outside the space, which are not stored)."""
    from optuna.trial import TrialState

    trial.set_user_attr(TRIAL_ATTR, record)  # lets a reader see a lost record
    if not result.ok:
        trial.set_user_attr("error", result.error)
        return study.tell(trial, state=TrialState.FAIL)
    trial.set_user_attr("metrics", result.metrics)
    trial.set_user_attr("spec", result.spec)
    for name, value in constraints(result.metrics, config.budgets).items():
        trial.set_constraint(name, value)
    return study.tell(trial, [result.metrics[m] for m in config.objectives])


def _minimized(values: Sequence[float], maximize: Sequence[bool]) -> np.ndarray:
    return np.array([-v if m else v for v, m in zip(values, maximize, strict=True)])


def _progress_reporter(on_progress: Callable[[SearchProgress], None] | None,
                       total: int) -> Callable[[int, int, FrontTracker], None]:
    def report(done: int, feasible: int, tracker: FrontTracker) -> None:
        if on_progress is not None:
            on_progress(SearchProgress(done, total, feasible, len(tracker),
                                       tracker.hypervolume()))

    return report
