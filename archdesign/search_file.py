"""Search options from a YAML (or JSON) file: ``archdesign search --config FILE.yaml``.

The keys are those of the ``search`` section of a run's ``config.yaml`` (the fields of
:class:`~archdesign.search.SearchConfig`: what a search computes) plus how to run it
(:data:`EXECUTION_KEYS`). A run's own ``config.yaml`` is a valid file too, so a run is
repeated with ``archdesign search --config RUN/config.yaml --run-dir NEW``. Budgets go
under ``budgets``, with units (``budgets: {latency: 4ms, flops: 600M}``). Options given on
the command line override the file's.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from archdesign.errors import InputError, read_data_file

#: Keys of a search file that say how to run the search, not what it computes (the run
#: directory does not keep them).
EXECUTION_KEYS = ("workers", "ray_address", "run_dir", "resume")
#: The top-level keys of a run's config.yaml, whose ``search`` section is the search.
_RUN_CONFIG_KEYS = {"search", "archdesign_version", "score_objective"}
_STRINGS = ("space", "hardware", "strategy", "dtype", "latency_model", "score", "storage",
            "ray_address", "run_dir")
_INTEGERS = {"trials": 1, "seed": 0, "batch": 1, "population": 2, "measure": 0,
             "workers": 1}


def allowed_keys() -> list[str]:
    from archdesign.search import SearchConfig

    return [f.name for f in fields(SearchConfig)] + list(EXECUTION_KEYS)


def read_search_file(path: str | Path) -> dict[str, Any]:
    """The options in ``path``, checked and with budgets parsed to base units; an
    :class:`InputError` naming the file, the key and what is allowed."""
    from archdesign.metrics import BUDGET_NAMES, parse_quantity

    path = Path(path)
    data = read_data_file(path, "search config")
    if isinstance(data, dict) and "search" in data and set(data) <= _RUN_CONFIG_KEYS:
        data = data["search"]  # a run's config.yaml
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of search options (e.g. space: "
                         f"mobilenet), got {type(data).__name__}")
    allowed = allowed_keys()
    values: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}: {key}"
        if key not in allowed:
            hint = (f" (budgets go under budgets:, e.g. budgets: {{{key}: ...}})"
                    if key in BUDGET_NAMES else "")
            raise InputError(f"{path}: unknown key {key!r}{hint}; allowed keys: "
                             f"{', '.join(allowed)}")
        if value is None:
            continue
        if key in _STRINGS and not isinstance(value, str):
            raise InputError(f"{where}: expected a string, got {value!r}")
        if key in _INTEGERS and (isinstance(value, bool) or not isinstance(value, int)
                                 or value < _INTEGERS[key]):
            raise InputError(f"{where}: expected an integer >= {_INTEGERS[key]}, got "
                             f"{value!r}")
        if key == "resume" and not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, got {value!r}")
        if key == "objectives":
            value = _objectives(where, value)
        if key == "budgets":
            if not isinstance(value, dict):
                raise InputError(f"{where}: expected a mapping of budgets, e.g. {{latency: "
                                 f"4ms}}; allowed budgets: {', '.join(BUDGET_NAMES)}")
            for name in value:
                if name not in BUDGET_NAMES:
                    raise InputError(f"{where}: unknown budget {name!r}; allowed budgets: "
                                     f"{', '.join(BUDGET_NAMES)}")
            try:
                value = {name: parse_quantity(name, amount) for name, amount in value.items()}
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
        values[key] = value
    return values


def _objectives(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputError(f"{where}: expected a list of objective names (or one comma-separated "
                     f"string), got {value!r}")
