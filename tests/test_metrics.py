from __future__ import annotations

import pytest

from archdesign.errors import InputError
from archdesign.metrics import (
    binding,
    constraints,
    distinct_texts,
    format_budgets,
    format_metric,
    metric_texts,
    parse_quantity,
)


@pytest.mark.parametrize(("metric", "text", "value"), [
    ("latency", "5ms", 5.0), ("latency", "800us", 0.8), ("latency", "0.5s", 500.0),
    ("latency", "2", 2.0), ("flops", "600M", 6e8), ("flops", "4.1GFLOPs", 4.1e9),
    ("params", "5m", 5e6), ("memory", "2MiB", 2 * 2**20), ("memory", "64MB", 64e6),
    ("memory", "8M", 8e6), ("activations", "1e6", 1e6), ("flops", 3.5e8, 3.5e8),
])
def test_parse_quantity(metric: str, text: str, value: float) -> None:
    assert parse_quantity(metric, text) == pytest.approx(value)


@pytest.mark.parametrize(("metric", "text", "message"), [
    ("latency", "fast", "--latency: expected a number"), ("latency", "5kg", "ms, s, us"),
    ("flops", "-1M", "--flops"), ("latency", "0ms", "positive"), ("flops", "inf", "--flops"),
    ("score", "5", "budget: 'score' is not one of"),
])
def test_parse_quantity_rejects(metric: str, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_quantity(metric, text)


def test_parse_quantity_names_the_option_it_is_given() -> None:
    with pytest.raises(InputError, match=r"^--peak-memory: expected a number"):
        parse_quantity("memory", "lots", "--peak-memory")


@pytest.mark.parametrize(("name", "value", "text"), [
    ("latency", 1.234, "1.23 ms"), ("latency", 0.0042, "4.2 us"), ("flops", 3.125e8, "312.5M"),
    ("params", 950.0, "950"), ("memory", 4.2 * 2**20, "4.20 MiB"), ("memory", 100, "100 B"),
    ("score", 1234.5678, "1235"), ("rho", 0.4321, "0.4321"),
])
def test_format_metric(name: str, value: float, text: str) -> None:
    assert format_metric(name, value) == text


def test_constraints_and_binding_budgets() -> None:
    metrics = {"latency": 1.9, "params": 2e6}
    budgets = {"params": 5e6, "latency": 2.0}
    assert constraints(metrics, budgets) == {"latency": pytest.approx(-0.05),
                                             "params": pytest.approx(-0.6)}
    assert binding(metrics, budgets) == ["latency"]  # 95% of its budget used
    assert format_budgets(budgets) == "params <= 5M, latency <= 2 ms"
    assert format_budgets({}) == "none"


def test_distinct_values_print_differently() -> None:
    assert distinct_texts([7703.41, 7703.46, 6445.0]) == ["7703.4", "7703.5", "6445"]
    assert distinct_texts([7703.4, 7703.4, 5.0]) == ["7703", "7703", "5"]
    assert distinct_texts([1.0, 1.0 + 1e-12]) == ["1", "1.000000000001"]
    assert metric_texts("score", [12.0, 12.0004]) == ["12", "12.0004"]
    assert metric_texts("latency", [3.581, 3.582]) == ["3.58 ms", "3.58 ms"]
