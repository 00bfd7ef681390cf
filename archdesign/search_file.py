"""Search options from a YAML (or JSON) file: ``archdesign search --config FILE.yaml``.

The keys are those of the ``search`` section of a run's ``config.yaml`` (the fields of
:class:`~archdesign.search.SearchConfig`: what a search computes) plus how to run it
(:data:`EXECUTION_KEYS`). A run's own ``config.yaml`` is a valid file too, so a run is
repeated with ``archdesign search --config RUN/config.yaml --run-dir NEW``. Budgets go
under ``budgets``, with units (``budgets: {latency: 4ms, flops: 600M}``). Options given on
the command line override the file's.

The same checks read the ``search`` section of a run's ``config.yaml``
(:func:`check_search_options`), so a damaged run config is refused with the key named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from archdesign.errors import InputError, read_data_file

#: Keys of a search file that say how to run the search, not what it computes (the run
#: directory does not keep them).
EXECUTION_KEYS = ("workers", "ray_address", "run_dir", "resume")
#: The top-level keys of a run's config.yaml, whose ``search`` section is the search.
RUN_CONFIG_KEYS = ("search", "archdesign_version", "score_objective")
#: The largest sampler seed (NumPy's and Optuna's samplers take 32-bit seeds).
MAX_SEED = 2**32 - 1
_STRINGS = ("space", "hardware", "strategy", "dtype", "latency_model", "score", "storage",
            "ray_address", "run_dir")
# key -> (smallest, largest or None)
_INTEGERS: dict[str, tuple[int, int | None]] = {
    "trials": (1, None), "seed": (0, MAX_SEED), "batch": (1, None), "population": (2, None),
    "measure": (0, None), "workers": (1, None)}


def allowed_keys(execution: bool = True) -> list[str]:
    """The keys of a search file (``execution``) or of a run config's search section."""
    from archdesign.search import SearchConfig

    return [f.name for f in fields(SearchConfig)] + list(EXECUTION_KEYS if execution else ())


def read_search_file(path: str | Path) -> dict[str, Any]:
    """The options in ``path``, checked and with budgets parsed to base units; an
    :class:`InputError` naming the file, the key and what is allowed."""
    path = Path(path)
    data = read_data_file(path, "search config")
    if isinstance(data, dict) and "search" in data:  # a run's config.yaml
        extra = [k for k in data if k not in RUN_CONFIG_KEYS]
        if extra:
            raise InputError(f"{path}: unknown key {extra[0]!r} beside search: (a run's "
                             f"config.yaml holds {', '.join(RUN_CONFIG_KEYS)}; a search file "
                             f"holds the options without a search: section)")
        return check_search_options(data["search"], f"{path}: search", execution=False)
    return check_search_options(data, str(path))


def check_search_options(data: Any, where: str, execution: bool = True,
                         error: type[InputError] = InputError) -> dict[str, Any]:
    """``data`` checked as search options (with :data:`EXECUTION_KEYS` if ``execution``):
    each value of the type and range its key allows, budgets parsed; ``error`` names
    ``where``, the key and what is allowed."""
    from archdesign.hardware.profile import MODEL_KINDS
    from archdesign.metrics import BUDGET_NAMES

    if not isinstance(data, dict):
        raise error(f"{where}: expected a mapping of search options (e.g. space: "
                    f"mobilenet), got {type(data).__name__}")
    allowed = allowed_keys(execution)
    values: dict[str, Any] = {}
    for key, value in data.items():
        at = f"{where}: {key}"
        if key not in allowed:
            hint = (f" (budgets go under budgets:, e.g. budgets: {{{key}: ...}})"
                    if key in BUDGET_NAMES else "")
            raise error(f"{where}: unknown key {key!r}{hint}; allowed keys: "
                        f"{', '.join(allowed)}")
        if value is None:
            continue
        if key in _STRINGS and not isinstance(value, str):
            raise error(f"{at}: expected a string, got {value!r}")
        if key in _INTEGERS:
            low, high = _INTEGERS[key]
            if (isinstance(value, bool) or not isinstance(value, int) or value < low
                    or (high is not None and value > high)):
                allowed_range = f">= {low}" if high is None else f"from {low} to {high}"
                raise error(f"{at}: expected an integer {allowed_range}, got {value!r}")
        if key == "latency_model" and value not in MODEL_KINDS:
            raise error(f"{at}: {value!r} is not one of {', '.join(MODEL_KINDS)}")
        if key == "resume" and not isinstance(value, bool):
            raise error(f"{at}: expected true or false, got {value!r}")
        if key == "objectives":
            value = _objectives(at, value, error)
        if key == "budgets":
            value = _budgets(at, value, error)
        values[key] = value
    return values


def _objectives(where: str, value: Any, error: type[InputError]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise error(f"{where}: expected a list of objective names (or one comma-separated "
                f"string), got {value!r}")


def _budgets(where: str, value: Any, error: type[InputError]) -> dict[str, float]:
    from archdesign.metrics import BUDGET_NAMES, parse_quantity

    if not isinstance(value, dict):
        raise error(f"{where}: expected a mapping of budgets, e.g. {{latency: 4ms}}; "
                    f"allowed budgets: {', '.join(BUDGET_NAMES)}")
    for name in value:
        if name not in BUDGET_NAMES:
            raise error(f"{where}: unknown budget {name!r}; allowed budgets: "
                        f"{', '.join(BUDGET_NAMES)}")
    try:
        return {name: parse_quantity(name, amount) for name, amount in value.items()}
    except InputError as exc:
        raise error(f"{where}: {exc}") from None


def check_names(values: Mapping[str, Any], where: str) -> None:
    """The space, hardware profile and score objective that ``values`` name can be found
    (and read); else an :class:`InputError` naming ``where`` and the key."""
    from archdesign.hardware.profile import get_profile
    from archdesign.objectives import get_objective
    from archdesign.spaces import get_space

    for key, find in (("space", get_space), ("hardware", get_profile),
                      ("score", get_objective)):
        if key in values:
            try:
                find(values[key])
            except InputError as exc:
                named = str(exc).startswith(f"{key}: ")  # a profile's errors name the key
                raise InputError(f"{where}: {'' if named else f'{key}: '}{exc}") from None
