from __future__ import annotations

import numpy as np
import pytest

from archdesign.pareto import Frame, FrontTracker, hypervolume, pareto_mask, pareto_ranks


def _brute_mask(values: np.ndarray) -> np.ndarray:
    return np.array([not any(np.all(o <= r) and np.any(o < r) for o in values)
                     for r in values])


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_pareto_mask_matches_brute_force(d: int) -> None:
    rng = np.random.default_rng(d)
    for trial in range(30):
        values = rng.integers(0, 6, size=(int(rng.integers(1, 40)), d)).astype(float)
        assert (pareto_mask(values) == _brute_mask(values)).all(), trial


def test_hypervolume_by_hand_2d() -> None:
    frame = Frame((0.0, 0.0), (1.0, 1.0))
    # Two boxes [0.2,1]x[0.6,1] and [0.5,1]x[0.3,1]: 0.32 + 0.35 - 0.2 = 0.47
    assert hypervolume(np.array([[0.2, 0.6], [0.5, 0.3]]), frame) == pytest.approx(0.47)
    # Points outside the reference add nothing; points beyond the ideal are clipped.
    assert hypervolume(np.array([[1.5, 0.0]]), frame) == 0.0
    assert hypervolume(np.array([[-1.0, -1.0]]), frame) == pytest.approx(1.0)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_matches_optuna(d: int) -> None:
    # Optuna's (private) WFG implementation as an independent reference.
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(10 + d)
    for _ in range(10):
        values = rng.random((int(rng.integers(1, 30)), d))
        ours = hypervolume(values, Frame((0.0,) * d, (1.0,) * d))
        assert ours == pytest.approx(compute_hypervolume(values, np.ones(d)), abs=1e-12)


def test_frame_scales_objectives() -> None:
    frame = Frame((-100.0, 1.0), (0.0, 5.0))
    assert hypervolume(np.array([[-50.0, 3.0]]), frame) == pytest.approx(0.5 * 0.5)


def test_tracker_follows_the_front() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((300, 2))
    frame = Frame((0.0, 0.0), (1.0, 1.0))
    tracker = FrontTracker(frame)
    for i, v in enumerate(values):
        tracker.add(i, v)
        tracker.add(i, v)  # a repeat changes nothing
    assert sorted(tracker.ids) == sorted(np.flatnonzero(pareto_mask(values)).tolist())
    assert tracker.hypervolume() == pytest.approx(hypervolume(values, frame))


def test_ranks() -> None:
    values = np.array([[0, 0], [1, 1], [2, 2], [0, 2]], dtype=float)
    assert pareto_ranks(values).tolist() == [0, 1, 2, 1]


def test_frame_rejects_empty_range() -> None:
    with pytest.raises(ValueError, match="reference"):
        Frame((1.0,), (1.0,))
