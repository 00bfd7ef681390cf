"""Search strategies: an Optuna sampler, a batch size and how the MP designer takes part.

Every strategy is a :class:`Strategy` registered by name in :data:`REGISTRY`; the search
asks a strategy, never tests its name. A strategy's sampler is pinned by its seed, and
its batch size (trials asked before the next tell) depends on the strategy and the
population only, never on the number of workers, so one seed gives one set of trials.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from archdesign.errors import InputError


class Strategy(ABC):
    """How a search proposes trials."""

    name: str = ""
    #: The MP designer's sweep seeds the study before the sampler starts.
    mp_seeded: bool = False
    #: The search ends when the seeds are evaluated (the sampler only fills the batch).
    seeds_only: bool = False

    @abstractmethod
    def sampler(self, seed: int, population: int) -> Any:
        """A new Optuna sampler, pinned by ``seed``."""

    @abstractmethod
    def batch_size(self, population: int) -> int:
        """Trials asked before the next tell."""


class NSGA2(Strategy):
    name = "nsga2"

    def sampler(self, seed: int, population: int) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)

    def batch_size(self, population: int) -> int:
        return population  # one generation


class MPNSGA2(NSGA2):
    """NSGA-II whose first generation starts from the MP designer's sweep."""

    name = "mp+nsga2"
    mp_seeded = True


class TPE(Strategy):
    name = "tpe"

    def sampler(self, seed: int, population: int) -> Any:
        import optuna

        with warnings.catch_warnings():  # multivariate and constant_liar are experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                              n_startup_trials=min(20, population))

    def batch_size(self, population: int) -> int:
        return 8


class GP(Strategy):
    name = "gp"

    def sampler(self, seed: int, population: int) -> Any:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)

    def batch_size(self, population: int) -> int:
        return 1  # the GP refits after every trial


class Random(Strategy):
    name = "random"

    def sampler(self, seed: int, population: int) -> Any:
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)

    def batch_size(self, population: int) -> int:
        return 64


class MP(Random):
    """The MP designer's sweep alone: its designs, evaluated, and nothing else."""

    name = "mp"
    mp_seeded = True
    seeds_only = True


REGISTRY: dict[str, Strategy] = {s.name: s for s in (MPNSGA2(), MP(), NSGA2(), TPE(), GP(),
                                                     Random())}
STRATEGIES: tuple[str, ...] = tuple(REGISTRY)


def get_strategy(name: str) -> Strategy:
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"--strategy: {name!r} is not one of {list(STRATEGIES)}") from None


def make_sampler(strategy: str, seed: int, population: int) -> Any:
    """The Optuna sampler of a strategy, pinned explicitly with its seed."""
    return get_strategy(strategy).sampler(seed, population)


def session_seed(seed: int, done: int) -> int:
    """The sampler seed for a session that starts with ``done`` trials recorded.

    A resumed sampler must not replay the random stream that produced the first trials.
    """
    if done == 0:
        return seed
    return int(np.random.SeedSequence([seed, done]).generate_state(1)[0])
