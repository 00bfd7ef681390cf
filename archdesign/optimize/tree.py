"""Best-first branch and bound with exact incumbents, for every MP formulation.

A formulation (the posynomial hull relaxation of :mod:`~archdesign.optimize.mp`, the
per-block choice relaxation of :mod:`~archdesign.optimize.choices`) says what its nodes
are, how one is bounded, split and rounded to a design; this loop does the rest. Nodes
come off a heap by bound; a node whose bound is within the tolerance of the incumbent is
closed, and so is every node left once the best one is. The certified upper bound is the
largest bound of any node not explored to the end (or the incumbent's own score). The
most promising node runs a local search from its rounding, every bounded node has its
rounding evaluated, and every design is recounted exactly. The work is bounded by nodes,
so the same inputs give the same design and bound on any machine; an explicit time limit
may cut it shorter and the caller says so.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from typing import Any, Generic, Protocol, TypeVar

from archdesign.optimize.local import LocalSearch
from archdesign.optimize.problem import Evaluation, Problem
from archdesign.optimize.relaxation import BOUND_MARGIN
from archdesign.spaces import Value

# Steps of the local search run from the rounding of every node taken off the heap: single
# grid steps, and paired ones where those stall (cheap since candidates are screened by
# the relaxation's exact figures; without them the free-bottleneck ResNet-50 problem took
# 315 nodes instead of 213, DeepMAD-29M 125 instead of 9: bench_mp).
LOCAL_STEPS = 8
# Paired-move steps that polish every new incumbent found in the loop: trades between two
# parameters (a width up, a depth down) that single steps cannot make within the budgets.
# DeepMAD-89M's incumbent found by a rounding, left unpolished, kept 1,000 nodes open
# (7 with it).
POLISH_STEPS = 30


class TreeNode(Protocol):
    bound: float
    sol: Any


N = TypeVar("N", bound=TreeNode)


class BranchAndBound(LocalSearch, Generic[N]):
    """The search loop; a formulation provides :meth:`roots`, :meth:`bound`,
    :meth:`branch`, :meth:`is_leaf`, :meth:`leaf_params` and :meth:`round_solution`."""

    def __init__(self, problem: Problem, fixed: dict[str, Value], tolerance: float,
                 max_nodes: int, time_limit: float | None) -> None:
        super().__init__(problem, fixed)
        self.tolerance = tolerance
        self.max_nodes = max_nodes
        self.time_limit = time_limit
        self.nodes = 0  # relaxations solved
        # the largest bound of any node (or part of one) closed by the tolerance: a
        # formulation that prunes part of a node records the part's bound here
        self.closed_bound = -math.inf
        self.polished: Evaluation | None = None  # the last incumbent polished by pairs

    # -- what a formulation provides ------------------------------------------------------

    def roots(self) -> list[N]:
        raise NotImplementedError

    def bound(self, node: N, parent_bound: float = math.inf) -> None:
        """Solve the node's relaxation: set ``node.sol`` and ``node.bound`` (-inf when the
        node holds nothing feasible) and count it in :attr:`nodes`."""
        raise NotImplementedError

    def branch(self, node: N) -> list[N]:
        """The node's children (each narrowed as far as the formulation can; empty ones
        left out)."""
        raise NotImplementedError

    def is_leaf(self, node: N) -> bool:
        raise NotImplementedError

    def leaf_params(self, node: N) -> dict[str, Value]:
        raise NotImplementedError

    def round_solution(self, node: N, sol: Any) -> dict[str, Value]:
        raise NotImplementedError

    def improve(self, node: N) -> None:
        """Look for a better incumbent from the most promising node: a local search from
        its rounding (single moves, and paired ones where candidates are screened: without
        screening each is a recount), and a longer one from any incumbent found
        in the loop and not yet polished (by this search, or by the rounding of a node
        bounded since). The roots' incumbent is left as its own search ends: polishing it
        too took the search down a worse path on the free-bottleneck ResNet-18 problem
        (763 nodes instead of 457 to the same 0.98% gap; bench_mp)."""
        self.local_search(self.round_solution(node, node.sol), max_steps=LOCAL_STEPS,
                          pairs=self.screen)
        if self.incumbent is not None and self.incumbent is not self.polished:
            self.polished = self.incumbent
            self.local_search(self.incumbent.params, max_steps=POLISH_STEPS, pairs=True)

    # -- the loop ---------------------------------------------------------------------------

    def _stop(self, start: float) -> str | None:
        """Why the search must stop now (the node limit, an explicit time limit), if it
        must."""
        if self.nodes >= self.max_nodes:
            return "node_limit"
        if self.time_limit is not None and time.perf_counter() - start > self.time_limit:
            return "time_limit"
        return None

    def _slack(self, lower: float) -> float:
        """How far above the incumbent a bound may be and still close: the tolerance, plus
        twice the margin every bound carries for the solver's accuracy."""
        return (self.tolerance + 2 * BOUND_MARGIN) * max(1.0, abs(lower))

    def _lower(self) -> float:
        return self.incumbent.score if self.incumbent is not None else -math.inf

    def run(self) -> tuple[float, str]:
        """Search; the certified upper bound and the status ("optimal": closed to the
        tolerance, "node_limit", "time_limit")."""
        start = time.perf_counter()
        heap: list[tuple[float, int, N]] = []
        counter = itertools.count()
        for root in self.roots():
            self.bound(root)
            if root.sol is not None:  # bounded by its steps: runs whatever the limits
                self.local_search(self.round_solution(root, root.sol), max_steps=LOCAL_STEPS)
            if root.bound > -math.inf:
                heapq.heappush(heap, (-root.bound, next(counter), root))
        self.polished = self.incumbent  # see improve()
        status = "optimal"
        while heap:
            neg, _, node = heapq.heappop(heap)
            lower = self._lower()
            if -neg <= lower + self._slack(lower):
                self.closed_bound = max(self.closed_bound, -neg)
                heap.clear()
                break
            stop = self._stop(start)
            if stop is not None:
                heapq.heappush(heap, (neg, next(counter), node))
                status = stop
                break
            if node.sol is not None:  # the most promising node: search from it
                self.improve(node)
            for child in self.branch(node):
                if self.is_leaf(child):
                    leaf = self.leaf_params(child)
                    if self.problem.space.feasible(leaf):
                        self.evaluate(leaf)
                    continue
                self.bound(child, node.bound)
                if child.bound == -math.inf:
                    continue
                if child.sol is not None:  # a cheap incumbent at every node
                    self.evaluate(self.round_solution(child, child.sol))
                lower = self._lower()
                if child.bound <= lower + self._slack(lower):  # closed by the tolerance
                    self.closed_bound = max(self.closed_bound, child.bound)
                    continue
                heapq.heappush(heap, (-child.bound, next(counter), child))
        if self.incumbent is not None:  # polish the incumbent with paired moves
            self.local_search(self.incumbent.params, max_steps=POLISH_STEPS, pairs=True)
        lower = self._lower()
        open_bound = max((-item[0] for item in heap), default=-math.inf)
        return max(open_bound, self.closed_bound, lower), status
