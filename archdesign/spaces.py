"""Search spaces: versioned YAML files in ``search_spaces/``, loaded, validated, registered.

A space is a set of named :class:`Parameter` s and a pure ``decode(params) -> ArchSpec``.
Two families:

- ``staged``: per-stage fields (width, depth, kernel, expansion, ...), each either a fixed
  value or a parameter named ``s<i>.<field>`` (stages counted from 1); fields given at the
  top level apply to every stage and, if they are parameters, are one shared parameter
  named after the field. ``resolution`` and stem/head fields may be parameters too, and a
  value ``$NAME`` refers to another parameter (e.g. a ConvNeXt stem as wide as stage 1).
  ``parameters`` declares parameters by name for such references (``ks0``, ``op3``).
  A stage may list per-block fields (``blocks``, one entry per block slot); a stage whose
  depth is a parameter uses its first ``depth`` slots (Once-for-All's elastic depth). A
  block's ``op`` names an entry of the space's ``ops`` table, a mapping of block fields
  (FBNet's ``k3_e1_g2``, NAS-Bench-Macro's ``ir_5x5_t6``). ``constraints`` bound ratios of
  two parameters (``{ratio: [s1.hidden_width, s1.width], min: 0.1, max: 1}``): a point
  outside them is not in the space.
- ``regnet``: the quantized-linear parameterization of Radosavovic et al. (2020): depth,
  w0, wa, wm, group width, bottleneck ratio, SE ratio; widths quantized to multiples of
  ``q`` and group widths made compatible with bottleneck widths as pycls does.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from archdesign._package import builtin_dir
from archdesign.errors import InputError, read_data_file
from archdesign.spec import (
    ArchSpec,
    BlockSpec,
    HeadSpec,
    SpecError,
    StageSpec,
    StemSpec,
    check_field,
)

SPACES_DIR = builtin_dir("search_spaces")
SPACE_SCHEMA_VERSION = 1

Value = int | float | str | bool


class SpaceError(InputError):
    """An invalid search-space file or parameter value."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """One design parameter: an int or float range (optionally stepped/log) or choices."""

    name: str
    kind: Literal["int", "float", "categorical"]
    default: Value
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Value, ...] = ()

    @property
    def count(self) -> float:
        """Number of values (``math.inf`` for a continuous float)."""
        if self.kind == "categorical":
            return len(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step:
            return math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return math.inf

    def values(self) -> tuple[Value, ...]:
        """Every value, in order (choices as given; a stepped range ascending)."""
        if self.kind == "categorical":
            return self.choices
        if math.isinf(self.count):
            raise SpaceError(f"parameter {self.name!r} is continuous: it has no list of "
                             f"values (give it a step)")
        assert self.low is not None
        step = self.step or 1
        if self.kind == "int":
            return tuple(int(self.low) + int(step) * i for i in range(int(self.count)))
        return tuple(round(self.low + i * step, 10) for i in range(int(self.count)))

    def sample(self, rng: np.random.Generator) -> Value:
        if self.kind == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            step = int(self.step or 1)
            return int(self.low) + step * int(rng.integers(int(self.count)))
        if self.step:
            return round(self.low + self.step * int(rng.integers(int(self.count))), 10)
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def check(self, value: Any, source: str) -> Value:
        """``value`` coerced to this parameter's type, or :class:`SpaceError`."""
        where = f"{source}: parameter {self.name!r}"
        if self.kind == "categorical":
            for choice in self.choices:
                if value == choice or (isinstance(value, str) and _same(choice, value)):
                    return choice
            raise SpaceError(f"{where}: {value!r} is not one of {list(self.choices)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SpaceError(f"{where}: expected a number, got {value!r}") from None
        assert self.low is not None and self.high is not None
        if not self.low <= number <= self.high:
            raise SpaceError(f"{where}: {value} is outside [{self.low:g}, {self.high:g}]")
        if self.kind == "int":
            if number != int(number):
                raise SpaceError(f"{where}: expected an integer, got {value!r}")
            if (int(number) - int(self.low)) % int(self.step or 1):
                raise SpaceError(f"{where}: {int(number)} is not on the grid "
                                 f"{self.low:g}, {self.low + (self.step or 1):g}, ... "
                                 f"{self.high:g}")
            return int(number)
        return number

    def check_values(self) -> list[Value]:
        """Every value (a range of up to 4096 steps), else the ends of the range: what a
        file's check must accept for the space to hold only valid networks."""
        if self.count <= 4096:
            return list(self.values())
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def describe(self) -> str:
        if self.kind == "categorical":
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        rng = f"[{self.low:g}, {self.high:g}]"
        if self.step and self.step != 1:
            rng += f" step {self.step:g}"
        return rng + (" log" if self.log else "")


def _same(choice: Value, text: str) -> bool:
    """Whether a command-line string names ``choice`` ("0.250" names 0.25, "7" names 7)."""
    if isinstance(choice, bool) or not isinstance(choice, (int, float)):
        return str(choice) == text
    try:
        return float(text) == choice
    except ValueError:
        return False


def _parse_parameter(name: str, data: dict[str, Any], source: str) -> Parameter:
    where = f"{source}: {name}"
    allowed = {"min", "max", "step", "log", "choices", "default"}
    for key in data:
        if key not in allowed:
            raise SpaceError(f"{where}: unknown key {key!r}; allowed: {sorted(allowed)}")
    if "choices" in data:
        choices = data["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}.choices: expected a non-empty list")
        for choice in choices:
            if not isinstance(choice, (int, float, str)) or (isinstance(choice, float)
                                                              and not math.isfinite(choice)):
                raise SpaceError(f"{where}.choices: {choice!r} is not a number, string or "
                                 f"true/false")
        if len(choices) > 100000:
            raise SpaceError(f"{where}.choices: {len(choices)} choices; at most 100000")
        if set(data) - {"choices", "default"}:
            raise SpaceError(f"{where}: 'choices' cannot be combined with min/max/step/log")
        choice_default: Value = data.get("default", choices[0])  # type: ignore[assignment]
        if choice_default not in choices:
            raise SpaceError(f"{where}.default: {choice_default!r} is not one of {choices}")
        return Parameter(name, "categorical", choice_default, choices=tuple(choices))
    if "min" not in data or "max" not in data:
        raise SpaceError(f"{where}: a parameter needs 'choices' or both 'min' and 'max'")
    low, high = data["min"], data["max"]
    for key, v in (("min", low), ("max", high), ("step", data.get("step", 1))):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SpaceError(f"{where}.{key}: expected a finite number, got {v!r}")
    if low > high:
        raise SpaceError(f"{where}: min {low} is larger than max {high}")
    integer = all(isinstance(v, int) for v in (low, high, data.get("step", 1)))
    kind: Literal["int", "float"] = "int" if integer else "float"
    step = data.get("step", 1 if integer else None)
    if step is not None and step <= 0:
        raise SpaceError(f"{where}.step: must be positive, got {step}")
    if data.get("log") and low <= 0:
        raise SpaceError(f"{where}.log: a log-scale range needs min > 0")
    param = Parameter(name, kind, low, float(low), float(high), step, bool(data.get("log")))
    default: Value = data.get("default", low)
    return Parameter(name, kind, param.check(default, source), float(low), float(high), step,
                     bool(data.get("log")))


class SearchSpace(ABC):
    """A named set of parameters and a decoder from parameter values to an ArchSpec."""

    def __init__(self, name: str, description: str, source: str,
                 parameters: list[Parameter]) -> None:
        self.name = name
        self.description = description
        self.source = source
        self.parameters = parameters
        self._by_name = {p.name: p for p in parameters}

    @abstractmethod
    def decode(self, params: dict[str, Value]) -> ArchSpec:
        """The architecture for a complete, checked assignment of the parameters."""

    def feasible(self, params: dict[str, Value]) -> bool:
        """Whether an assignment is in the space (beyond per-parameter ranges)."""
        return True

    @property
    def size(self) -> float:
        """Number of assignments (an upper bound on distinct networks where assignments
        can decode alike, and where constraints cut the product)."""
        return math.prod(p.count for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        try:
            return self._by_name[name]
        except KeyError:
            raise SpaceError(f"{self.source}: space {self.name!r} has no parameter {name!r}; "
                             f"parameters: {sorted(self._by_name)}") from None

    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self.parameters}

    def resolve(self, overrides: dict[str, Any] | None = None) -> dict[str, Value]:
        """Defaults updated with ``overrides`` (strings allowed, as from a CLI), checked."""
        params = self.defaults()
        for name, value in (overrides or {}).items():
            params[name] = self.parameter(name).check(value, self.source)
        return params

    def sample(self, rng: np.random.Generator, max_tries: int = 1000) -> dict[str, Value]:
        """A uniformly drawn feasible assignment (rejection on :meth:`feasible`)."""
        for _ in range(max_tries):
            params = {p.name: p.sample(rng) for p in self.parameters}
            if self.feasible(params):
                return params
        raise SpaceError(f"{self.source}: no feasible sample in {max_tries} draws")

    def sample_spec(self, rng: np.random.Generator) -> ArchSpec:
        return self.decode(self.sample(rng))

    def spec(self, overrides: dict[str, Any] | None = None) -> ArchSpec:
        """The architecture at the defaults updated with ``overrides``."""
        return self.decode(self.resolve(overrides))


# -- staged family -------------------------------------------------------------------------

# The fields a space file may set are the spec's own (the spec validates their values).
_STAGE_FIELDS = tuple(f.name for f in dataclass_fields(StageSpec) if f.name != "blocks")
_BLOCK_FIELDS = tuple(f.name for f in dataclass_fields(BlockSpec))
_STEM_FIELDS = tuple(f.name for f in dataclass_fields(StemSpec))
_HEAD_FIELDS = tuple(f.name for f in dataclass_fields(HeadSpec))


class StagedSpace(SearchSpace):
    """Per-stage choices of width, depth, kernel, expansion, ... (ResNet, MobileNet, ConvNeXt),
    optionally per block (Once-for-All, FBNet, NAS-Bench-Macro)."""

    def __init__(self, name: str, description: str, source: str, parameters: list[Parameter],
                 template: dict[str, Any], ops: dict[str, dict[str, Any]] | None = None,
                 constraints: list[Ratio] | None = None) -> None:
        super().__init__(name, description, source, parameters)
        self._template = template  # every field: ("fixed", value) or ("param", name)
        self._ops = ops or {}
        self.constraints = constraints or []

    @staticmethod
    def _value(entry: tuple[str, Any], params: dict[str, Value]) -> Any:
        kind, value = entry
        return params[value] if kind == "param" else value

    def feasible(self, params: dict[str, Value]) -> bool:
        return all(c.holds(params) for c in self.constraints)

    @property
    def size(self) -> float:
        """Number of assignments, counting a block slot's parameters only for the depths
        that use the slot: Once-for-All's stages contribute Σ_d Π_{slots < d} instead of
        the product over all slots. Shared or constrained parameters keep the plain
        product over them (an upper bound)."""
        counts = {p.name: p.count for p in self.parameters}
        uses: dict[str, int] = {}
        for entry in _template_entries(self._template):
            if entry[0] == "param":
                uses[entry[1]] = uses.get(entry[1], 0) + 1
        total: float = 1  # exact integers while every count is finite
        accounted: set[str] = set()
        for stage in self._template["stages"]:
            kind, depth = stage["depth"]
            slot_params = [[v[1] for v in slot.values() if v[0] == "param"]
                           for slot in stage.get("blocks", ())]
            own = [name for names in slot_params for name in names]
            if kind != "param" or not own or uses[depth] != 1 or \
                    any(uses[name] != 1 for name in own):
                continue
            per_slot = [math.prod(counts[name] for name in names) for names in slot_params]
            depths = self.parameter(depth).values()
            total *= sum(math.prod(per_slot[:int(d)]) for d in depths)
            accounted.update([depth, *own])
        return total * math.prod(c for name, c in counts.items() if name not in accounted)

    def _blocks(self, stage: dict[str, Any], depth: int,
                params: dict[str, Value]) -> tuple[BlockSpec, ...]:
        slots = stage.get("blocks", ())
        if not slots:
            return ()
        if len(slots) < depth:
            raise SpaceError(f"{self.source}: a stage of depth {depth} has only {len(slots)} "
                             f"block slots")
        out = []
        for slot in slots[:depth]:
            fields_ = {k: self._value(v, params) for k, v in slot.items()}
            op = fields_.pop("op", None)
            if op is not None:
                fields_ = {**self._ops[str(op)], **fields_}
            out.append(BlockSpec(**fields_))
        return tuple(out)

    def decode(self, params: dict[str, Value]) -> ArchSpec:
        for c in self.constraints:
            if not c.holds(params):
                raise SpaceError(f"{self.source}: parameters {params} break the constraint "
                                 f"{c.describe()}")
        return self.decode_unconstrained(params)

    def decode_unconstrained(self, params: dict[str, Value]) -> ArchSpec:
        """:meth:`decode` without the ratio constraints (the MP probes the layer shapes
        with marker values that need not respect them)."""
        t = self._template
        try:
            stages = []
            for stage in t["stages"]:
                fields_ = {k: self._value(v, params) for k, v in stage.items()
                           if k != "blocks"}
                fields_["blocks"] = self._blocks(stage, int(fields_["depth"]), params)
                stages.append(StageSpec(**fields_))
            return ArchSpec(
                stages=tuple(stages),
                stem=StemSpec(**{k: self._value(v, params) for k, v in t["stem"].items()}),
                head=HeadSpec(**{k: self._value(v, params) for k, v in t["head"].items()}),
                resolution=self._value(t["resolution"], params),
                name=f"{self.name}",
            )
        except SpecError as exc:
            raise SpaceError(f"{self.source}: parameters {params} give an invalid "
                             f"architecture: {exc}") from None


@dataclass(frozen=True, slots=True)
class Ratio:
    """A bound on the ratio of two parameters: min <= numerator / denominator <= max."""

    numerator: str
    denominator: str
    low: float
    high: float

    def holds(self, params: dict[str, Value]) -> bool:
        ratio = float(params[self.numerator]) / float(params[self.denominator])
        return self.low - 1e-12 <= ratio <= self.high + 1e-12

    def describe(self) -> str:
        return f"{self.low:g} <= {self.numerator} / {self.denominator} <= {self.high:g}"


def _parse_constraints(data: Any, names: set[str], source: str) -> list[Ratio]:
    if not isinstance(data, list):
        raise SpaceError(f"{source}: constraints: expected a list of "
                         f"{{ratio: [A, B], min: x, max: y}}")
    out = []
    for i, item in enumerate(data):
        where = f"{source}: constraints[{i}]"
        if not isinstance(item, dict):
            raise SpaceError(f"{where}: expected a mapping")
        _reject(where, item, {"ratio", "min", "max"})
        pair = item.get("ratio")
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in names for p in pair)):
            raise SpaceError(f"{where}.ratio: expected two parameter names of this space; "
                             f"parameters: {sorted(names)}")
        bounds = [item.get("min", 0.0), item.get("max", math.inf)]
        if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds) \
                or bounds[0] > bounds[1]:
            raise SpaceError(f"{where}: min and max must be numbers with min <= max")
        out.append(Ratio(str(pair[0]), str(pair[1]), float(bounds[0]), float(bounds[1])))
    return out


def _staged_from_yaml(name: str, data: dict[str, Any], source: str) -> StagedSpace:
    allowed = {"name", "family", "description", "schema_version", "resolution", "stem",
               "head", "stages", "parameters", "ops", "constraints", *_STAGE_FIELDS}
    _reject(source, data, allowed)
    parameters: list[Parameter] = []
    names: set[str] = set()

    def declare(param_name: str, value: dict[str, Any]) -> None:
        if param_name in names:
            raise SpaceError(f"{source}: parameter {param_name!r} is defined twice")
        parameters.append(_parse_parameter(param_name, value, source))
        names.add(param_name)

    def field(param_name: str, value: Any, where: str) -> tuple[str, Any]:
        if isinstance(value, dict):
            declare(param_name, value)
            return ("param", param_name)
        if isinstance(value, str) and value.startswith("$"):
            return ("param", value[1:])  # checked once all parameters are known
        return ("fixed", value)

    declared = data.get("parameters", {})
    if not isinstance(declared, dict):
        raise SpaceError(f"{source}: 'parameters' must be a mapping of names to parameters")
    for param_name, value in declared.items():
        if not isinstance(value, dict):
            raise SpaceError(f"{source}: parameters.{param_name}: expected a mapping "
                             f"(choices, or min/max)")
        declare(str(param_name), value)
    ops = data.get("ops", {})
    if not isinstance(ops, dict) or not all(isinstance(v, dict) for v in ops.values()):
        raise SpaceError(f"{source}: 'ops' must map op names to mappings of block fields")
    for op_name, op_fields in ops.items():
        _reject(f"{source}: ops.{op_name}", op_fields, set(_BLOCK_FIELDS))
    shared = {k: field(k, data[k], k) for k in _STAGE_FIELDS if k in data}
    stages_data = data.get("stages")
    if not isinstance(stages_data, list) or not stages_data:
        raise SpaceError(f"{source}: 'stages' must be a non-empty list of stage mappings")
    stages = []
    for i, stage in enumerate(stages_data, start=1):
        if not isinstance(stage, dict):
            raise SpaceError(f"{source}: stages[{i - 1}] must be a mapping")
        _reject(f"{source}: stages[{i - 1}]", stage, {*_STAGE_FIELDS, "blocks"})
        entry: dict[str, Any] = dict(shared)
        for key, value in stage.items():
            if key != "blocks":
                entry[key] = field(f"s{i}.{key}", value, f"stages[{i - 1}].{key}")
        if "blocks" in stage:
            slots = stage["blocks"]
            if not isinstance(slots, list) or not all(isinstance(b, dict) for b in slots):
                raise SpaceError(f"{source}: stages[{i - 1}].blocks must be a list of "
                                 f"mappings of block fields")
            entry["blocks"] = []
            for j, slot in enumerate(slots):
                _reject(f"{source}: stages[{i - 1}].blocks[{j}]", slot,
                        {*_BLOCK_FIELDS, "op"})
                entry["blocks"].append({k: field(f"s{i}.b{j}.{k}", v, f"blocks[{j}].{k}")
                                        for k, v in slot.items()})
        for required in ("block", "width", "depth"):
            if required not in entry:
                raise SpaceError(f"{source}: stages[{i - 1}] has no {required!r} (set it in "
                                 f"the stage or at the top level)")
        stages.append(entry)
    parts = {}
    for part, fields_ in (("stem", _STEM_FIELDS), ("head", _HEAD_FIELDS)):
        section = data.get(part, {})
        if not isinstance(section, dict):
            raise SpaceError(f"{source}: {part!r} must be a mapping")
        _reject(f"{source}: {part}", section, set(fields_))
        parts[part] = {k: field(f"{part}.{k}", v, f"{part}.{k}") for k, v in section.items()}
    template = {"stages": stages, "stem": parts["stem"], "head": parts["head"],
                "resolution": field("resolution", data.get("resolution", 224), "resolution")}
    for entry_ in _template_entries(template):
        if entry_[0] == "param" and entry_[1] not in names:
            raise SpaceError(f"{source}: reference ${entry_[1]} names no parameter; "
                             f"parameters: {sorted(names)}")
    by_name = {p.name: p for p in parameters}
    for stage in stages:
        for slot in stage.get("blocks", ()):
            if "op" not in slot:
                continue
            kind, value = slot["op"]
            used = by_name[value].choices if kind == "param" else (value,)
            unknown = [str(v) for v in used if str(v) not in ops]
            if unknown:
                raise SpaceError(f"{source}: op {unknown[0]!r} is not in the space's 'ops' "
                                 f"table; ops: {sorted(ops)}")
    for op_name, op_fields in ops.items():
        for key, value in op_fields.items():
            _check_value(source, f"ops.{op_name}", "stage", key, value, None)
    _check_template(template, by_name, source)
    constraints = _parse_constraints(data.get("constraints", []), names, source)
    space = StagedSpace(name, str(data.get("description", "")), source, parameters, template,
                        {str(k): v for k, v in ops.items()}, constraints)
    space.decode(space.defaults())  # fail at load time if the defaults are not a network
    return space


def _check_value(source: str, where: str, part: str, key: str, value: Any,
                 param: Parameter | None) -> None:
    try:
        check_field(part, where, key, value)
    except SpecError as exc:
        if param is None:
            raise SpaceError(f"{source}: {exc}") from None
        raise SpaceError(f"{source}: parameter {param.name!r} allows a value that is not a "
                         f"valid {key}: {exc}") from None


def _check_template(template: dict[str, Any], by_name: dict[str, Parameter],
                    source: str) -> None:
    """Every fixed value and every value of every parameter is allowed where it is used."""
    used: list[tuple[str, str, str, tuple[str, Any]]] = [
        ("resolution", "spec", "resolution", template["resolution"])]
    for i, stage in enumerate(template["stages"]):
        used.extend((f"stages[{i}]", "stage", k, v) for k, v in stage.items() if k != "blocks")
        for j, slot in enumerate(stage.get("blocks", ())):
            used.extend((f"stages[{i}].blocks[{j}]", "stage", k, v) for k, v in slot.items()
                        if k != "op")
        depth_kind, depth = stage["depth"]
        slots = len(stage.get("blocks", ()))
        if slots:
            deepest = max(by_name[depth].check_values()) if depth_kind == "param" else depth
            if isinstance(deepest, int) and deepest > slots:
                raise SpaceError(f"{source}: stages[{i}]: depth can be {deepest} but the stage "
                                 f"has only {slots} block slots")
    for part in ("stem", "head"):
        used.extend((part, part, k, v) for k, v in template[part].items())
    referenced = {value for _, _, _, (kind, value) in used if kind == "param"}
    referenced |= {slot["op"][1] for stage in template["stages"]
                   for slot in stage.get("blocks", ()) if slot.get("op", ("",))[0] == "param"}
    unused = sorted(set(by_name) - referenced)
    if unused:
        raise SpaceError(f"{source}: parameter {unused[0]!r} is used by no field (a top-level "
                         f"field every stage sets again?)")
    for where, part, key, (kind, value) in used:
        if kind == "fixed":
            _check_value(source, where, part, key, value, None)
            continue
        param = by_name[value]
        for v in param.check_values():
            _check_value(source, where, part, key, v, param)


def _template_entries(template: dict[str, Any]) -> list[tuple[str, Any]]:
    out = [template["resolution"]]
    for stage in template["stages"]:
        out.extend(v for k, v in stage.items() if k != "blocks")
        for slot in stage.get("blocks", ()):
            out.extend(slot.values())
    out.extend(template["stem"].values())
    out.extend(template["head"].values())
    return out


# -- RegNet family ---------------------------------------------------------------------------


def generate_regnet(w_a: float, w_0: int, w_m: float, depth: int,
                    q: int = 8) -> tuple[list[int], list[int]]:
    """Per-stage widths and depths from RegNet parameters (Radosavovic et al. 2020, eq. 2-4).

    Block j gets the continuous width u_j = w_0 + w_a·j, quantized in log space to
    w_0·w_m^round(log(u_j/w_0)/log(w_m)) and to a multiple of q; blocks of equal width
    form a stage.
    """
    if not (w_a >= 0 and w_0 > 0 and w_m > 1 and w_0 % q == 0 and depth >= 1):
        raise ValueError(f"invalid RegNet parameters w_a={w_a}, w_0={w_0}, w_m={w_m}, "
                         f"depth={depth}, q={q}")
    widths_cont = np.arange(depth) * w_a + w_0
    exps = np.round(np.log(widths_cont / w_0) / np.log(w_m))
    widths_all = np.round(w_0 * np.power(w_m, exps) / q).astype(int) * q
    widths, depths = np.unique(widths_all, return_counts=True)
    return [int(w) for w in widths], [int(d) for d in depths]


def adjust_block_compatibility(widths: list[int], bottleneck: float,
                               group_width: int) -> tuple[list[int], list[int]]:
    """Widths and group widths such that each bottleneck width is a multiple of its group
    width (pycls ``adjust_block_compatibility``)."""
    inner = [int(max(1, w * bottleneck)) for w in widths]
    groups = [int(min(group_width, v)) for v in inner]
    multiples = [int(np.lcm(g, int(bottleneck))) if bottleneck > 1 else g for g in groups]
    inner = [max(m, int(round(v / m) * m)) for v, m in zip(inner, multiples, strict=True)]
    widths = [int(v / bottleneck) for v in inner]
    return widths, groups


class RegNetSpace(SearchSpace):
    """RegNet design space: (depth, w0, wa, wm, group_w, bottleneck, se)."""

    def __init__(self, name: str, description: str, source: str, parameters: list[Parameter],
                 fixed: dict[str, Any]) -> None:
        super().__init__(name, description, source, parameters)
        self._fixed = fixed

    def _stages(self, params: dict[str, Value]) -> list[StageSpec]:
        widths, depths = generate_regnet(float(params["wa"]), int(params["w0"]),
                                         float(params["wm"]), int(params["depth"]),
                                         int(self._fixed["quantum"]))
        bottleneck = float(params["bottleneck"])
        widths, groups = adjust_block_compatibility(widths, bottleneck, int(params["group_w"]))
        return [StageSpec("bottleneck", w, d, stride=2, kernel=3, expansion=bottleneck,
                          group_width=g, se_ratio=float(params["se"]), activation="relu")
                for w, d, g in zip(widths, depths, groups, strict=True)]

    @property
    def quantum(self) -> int:
        """Widths are multiples of this."""
        return int(self._fixed["quantum"])

    @property
    def num_stages(self) -> int | None:
        """The number of stages a network of the space has (None: any)."""
        stages = self._fixed.get("num_stages")
        return None if stages is None else int(stages)

    def feasible(self, params: dict[str, Value]) -> bool:
        stages = self._fixed.get("num_stages")
        return stages is None or len(self._stages(params)) == stages

    def decode(self, params: dict[str, Value]) -> ArchSpec:
        try:
            return ArchSpec(stages=tuple(self._stages(params)),
                            stem=StemSpec(**self._fixed["stem"]),
                            head=HeadSpec(**self._fixed["head"]),
                            resolution=int(params["resolution"]), name=self.name)
        except (SpecError, ValueError) as exc:
            raise SpaceError(f"{self.source}: parameters {params} give an invalid "
                             f"architecture: {exc}") from None


_REGNET_PARAMS = ("depth", "w0", "wa", "wm", "group_w", "bottleneck", "se", "resolution")


def _regnet_from_yaml(name: str, data: dict[str, Any], source: str) -> RegNetSpace:
    _reject(source, data, {"name", "family", "description", "schema_version", "parameters",
                           "quantum", "num_stages", "stem", "head"})
    params_data = data.get("parameters")
    if not isinstance(params_data, dict):
        raise SpaceError(f"{source}: 'parameters' must be a mapping of {list(_REGNET_PARAMS)}")
    _reject(f"{source}: parameters", params_data, set(_REGNET_PARAMS))
    parameters = []
    for key in _REGNET_PARAMS:
        value = params_data.get(key)
        if value is None:
            raise SpaceError(f"{source}: parameters.{key} is required")
        if not isinstance(value, dict):
            value = {"choices": [value]}
        parameters.append(_parse_parameter(key, value, source))
    for part, fields_ in (("stem", _STEM_FIELDS), ("head", _HEAD_FIELDS)):
        section = data.get(part, {})
        if not isinstance(section, dict):
            raise SpaceError(f"{source}: {part!r} must be a mapping")
        _reject(f"{source}: {part}", section, set(fields_))
    fixed = {"quantum": data.get("quantum", 8), "num_stages": data.get("num_stages"),
             "stem": data.get("stem", {}), "head": data.get("head", {})}
    _check_regnet(source, {p.name: p for p in parameters}, fixed)
    space = RegNetSpace(name, str(data.get("description", "")), source, parameters, fixed)
    space.decode(space.defaults())
    return space


# RegNet parameter -> (low, high, whether low is excluded); widths w0 + wa·j stay under
# the spec's largest width, checked below, so no value of the space decodes to a giant.
_REGNET_BOUNDS = {"depth": (1, 512, False), "w0": (0, 16384, True), "wa": (0, 16384, False),
                  "wm": (1, 16, True), "group_w": (1, 16384, False),
                  "bottleneck": (0, 16, True), "se": (0, 1, False),
                  "resolution": (8, 4096, False)}


def _check_regnet(source: str, params: dict[str, Parameter], fixed: dict[str, Any]) -> None:
    quantum = fixed["quantum"]
    if isinstance(quantum, bool) or not isinstance(quantum, int) or not 1 <= quantum <= 1024:
        raise SpaceError(f"{source}: quantum: expected an integer in [1, 1024], got "
                         f"{quantum!r}")
    stages = fixed["num_stages"]
    if stages is not None and (isinstance(stages, bool) or not isinstance(stages, int)
                               or not 1 <= stages <= 16):
        raise SpaceError(f"{source}: num_stages: expected an integer in [1, 16], got "
                         f"{stages!r}")
    for name, (low, high, open_low) in _REGNET_BOUNDS.items():
        for v in params[name].check_values():
            if isinstance(v, (str, bool)) or not (low < v if open_low else low <= v) \
                    or v > high:
                raise SpaceError(f"{source}: parameters.{name}: {v!r} is outside "
                                 f"{'(' if open_low else '['}{low}, {high}]")
        if name in ("depth", "w0", "group_w", "resolution") and any(
                v != int(v) for v in params[name].values()):
            raise SpaceError(f"{source}: parameters.{name}: expected integers")
    for v in params["w0"].values():
        if int(v) % quantum:
            raise SpaceError(f"{source}: parameters.w0: {v} is not a multiple of the "
                             f"quantum {quantum}")
    def top(name: str) -> float:
        return max(float(v) for v in params[name].check_values())

    widest = top("w0") + top("wa") * (top("depth") - 1)
    if widest > 16384:
        raise SpaceError(f"{source}: parameters: w0 + wa·(depth - 1) reaches {widest:g} "
                         f"channels; at most 16384")


# -- loading and registry ------------------------------------------------------------------

_FAMILIES = {"staged": _staged_from_yaml, "regnet": _regnet_from_yaml}


def _reject(where: str, data: dict[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise SpaceError(f"{where}: unknown key {key!r}; allowed keys: {sorted(allowed)}")


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate one search-space YAML file."""
    path = Path(path)
    source = str(path)
    data = read_data_file(path, "search space", SpaceError)
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: expected a mapping at the top level")
    version = data.get("schema_version", SPACE_SCHEMA_VERSION)
    if version != SPACE_SCHEMA_VERSION:
        raise SpaceError(f"{source}: schema_version {version!r} is not supported "
                         f"(this archdesign reads {SPACE_SCHEMA_VERSION})")
    family = data.get("family")
    if family not in _FAMILIES:
        raise SpaceError(f"{source}: family: {family!r} is not one of {sorted(_FAMILIES)}")
    name = data.get("name", path.stem)
    for key, value in (("name", name), ("description", data.get("description", ""))):
        if not isinstance(value, str) or len(value) > 10000:
            raise SpaceError(f"{source}: {key}: expected a string, got {value!r:.80}")
    return _FAMILIES[family](name, data, source)


@cache
def _registry() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SPACES_DIR.glob("*.yaml"))}


def list_spaces() -> list[str]:
    return sorted(_registry())


@cache
def _load_registered(name: str) -> SearchSpace:
    return load_space(_registry()[name])


def get_space(name: str) -> SearchSpace:
    """A registered space by name, or a space file by path."""
    if name in _registry():
        return _load_registered(name)
    if name.endswith((".yaml", ".yml")) or Path(name).is_file():
        return load_space(name)
    raise SpaceError(f"unknown search space {name!r}; known spaces: {list_spaces()} "
                     f"(or give a path to a space YAML file)")
