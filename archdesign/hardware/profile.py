"""Hardware profiles: a device described as a validated data file, and their registry.

A profile (``hardware_profiles/NAME.yaml``) names the device and precision, gives peak
throughput per op class and dtype, memory bandwidth, the fraction of peak each op class
reaches, a per-kernel overhead, the fusion rules, which values are derived or unverified,
and optionally a measured table / fitted model (``model``) with its validation figures.
Files are read with ``yaml.safe_load`` and validated; every error names the file and key.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archdesign._package import builtin_dir
from archdesign.cost import DTYPE_BYTES
from archdesign.errors import InputError, read_data_file
from archdesign.files import atomic_write_text
from archdesign.hardware.kernels import OP_CLASSES, SHAPE_TERMS, FusionRules

logger = logging.getLogger(__name__)

#: Where the built-in profiles live (``hardware_profiles/``); override with
#: ``ARCHDESIGN_HARDWARE_PATH`` (``os.pathsep``-separated directories, searched first).
BUILTIN_DIR = builtin_dir("hardware_profiles")
KINDS = ("gpu", "cpu", "npu")
MODEL_KINDS = ("roofline", "table", "fitted")
DEFAULT_CLASS = "default"
#: Runtimes a profile's latencies can come from (``runtime``); a datasheet roofline that
#: no runtime was measured in has none.
RUNTIMES = ("onnxruntime", "torch", "torch-compile", "tensorrt", "tflite", "openvino",
            "coreml", "tvm")
#: What ``machine`` records: the machine a profile was measured on (``profile measure``).
MACHINE_KEYS = ("cpu", "device", "gpu", "threads")


class ProfileError(InputError):
    """An invalid or unknown hardware profile; the message names the file and key."""


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Fraction of peak compute and of memory bandwidth an op class reaches."""

    compute: float
    memory: float


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A measured latency model attached to a profile.

    ``measurements``: CSV of measured kernels (relative to the profile file); ``kind``
    says which model the profile predicts with by default; ``params``: regressor
    hyperparameters (the fitted model is refit from the measurements at load, never
    unpickled); ``calibration``: network-level correction fitted on calibration networks.
    """

    kind: str
    measurements: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    name: str
    device: str
    kind: str
    precision: str
    peak_flops: dict[str, dict[str, float]]  # op class (or "default") -> dtype -> FLOP/s
    memory_bandwidth: float  # bytes/s
    efficiency: dict[str, Efficiency]  # op class (or "default") -> efficiency
    kernel_overhead_us: float
    fusion: FusionRules = field(default_factory=FusionRules)
    derived: dict[str, str] = field(default_factory=dict)  # key -> "derived: ..." note
    source: str = ""
    model: ModelConfig | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    runtime: str | None = None  # what the latencies were measured in (None: a datasheet)
    machine: dict[str, str] = field(default_factory=dict)  # where (profile measure)

    def peak(self, op_class: str, dtype: str) -> float:
        """Peak FLOP/s (2 per multiply-accumulate) for an op class at a dtype."""
        for key in (op_class, DEFAULT_CLASS):
            table = self.peak_flops.get(key)
            if table and dtype in table:
                return table[dtype]
        known = sorted(self.peak_flops.get(DEFAULT_CLASS, {}))
        raise ProfileError(f"{self.name}: no peak throughput for dtype {dtype!r}; "
                           f"this profile knows {known}")

    def efficiency_of(self, op_class: str) -> Efficiency:
        return self.efficiency.get(op_class, self.efficiency[DEFAULT_CLASS])

    @property
    def dtypes(self) -> list[str]:
        return sorted(self.peak_flops.get(DEFAULT_CLASS, {}))

    def resolve(self, relative: str) -> Path:
        base = self.path.parent if self.path is not None else Path.cwd()
        return (base / relative).resolve()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name, "device": self.device, "kind": self.kind,
            "precision": self.precision,
            **({"runtime": self.runtime} if self.runtime else {}),
            **({"machine": dict(self.machine)} if self.machine else {}),
            "peak_flops": {k: dict(v) for k, v in self.peak_flops.items()},
            "memory_bandwidth": self.memory_bandwidth,
            "efficiency": {k: {"compute": e.compute, "memory": e.memory}
                           for k, e in self.efficiency.items()},
            "kernel_overhead_us": self.kernel_overhead_us,
            "fusion": {"conv_norm_act": self.fusion.conv_norm_act,
                       "residual_add": self.fusion.residual_add},
            "derived": dict(self.derived),
            "source": self.source,
        }
        if self.model is not None:
            model: dict[str, Any] = {"kind": self.model.kind}
            if self.model.measurements:
                model["measurements"] = self.model.measurements
            if self.model.params:
                model["params"] = dict(self.model.params)
            if self.model.calibration:
                model["calibration"] = dict(self.model.calibration)
            data["model"] = model
        if self.validation:
            data["validation"] = self.validation
        return data

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(_plain(self.to_dict()), sort_keys=False))


def _plain(value: Any) -> Any:
    """numpy scalars and tuples to plain YAML types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


# -- validation --------------------------------------------------------------------------

_TOP_KEYS = ("name", "device", "kind", "precision", "runtime", "machine", "peak_flops",
             "memory_bandwidth", "efficiency", "kernel_overhead_us", "fusion", "derived",
             "source", "model", "validation")
_REQUIRED = ("name", "device", "kind", "precision", "peak_flops", "memory_bandwidth",
             "efficiency", "kernel_overhead_us")


def _where(source: str, key: str) -> str:
    return f"{source}: {key}"


def _positive(source: str, key: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1.5e12 (no exponent sign) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ProfileError(f"{_where(source, key)}: expected a number, got {value!r}")
    if math.isinf(value):
        raise ProfileError(f"{_where(source, key)}: expected a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ProfileError(f"{_where(source, key)}: must be {'>= 0' if allow_zero else '> 0'}"
                           f", got {value!r}")
    return float(value)


def _number(source: str, key: str, value: Any) -> float:
    """A finite number of any sign."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{_where(source, key)}: expected a finite number, got {value!r}")
    return float(value)


# calibration key -> whether it must be > 0 (the scale) or may be any finite number; a
# calibrated roofline's per-class and per-group overheads, shape coefficients and
# overlap flag (see archdesign.hardware.models.roofline_constants)
_CALIBRATION_KEYS = {"scale": True, "per_kernel_ms": False, "constant_ms": False,
                     "overlap": True, "per_group_us": True,
                     **{f"overhead_us.{c}": True for c in OP_CLASSES},
                     **{f"shape.{t}": True for t in SHAPE_TERMS}}
# regressor hyperparameter -> (integer?, min, max): the fitted model's only knobs
_FIT_PARAMS: dict[str, tuple[bool, float, float]] = {
    "max_iter": (True, 1, 10000), "learning_rate": (False, 1e-6, 1.0),
    "max_leaf_nodes": (True, 2, 4096), "min_samples_leaf": (True, 1, 100000),
    "l2_regularization": (False, 0.0, 1e6), "random_state": (True, 0, 2**32 - 1),
}


def _calibration(source: str, data: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in data.items():
        where = f"model.calibration.{key}"
        if key not in _CALIBRATION_KEYS:
            raise ProfileError(f"{_where(source, 'model.calibration')}: unknown key {key!r}; "
                               f"allowed: {list(_CALIBRATION_KEYS)}")
        out[str(key)] = (_positive(source, where, value) if _CALIBRATION_KEYS[key]
                         else _number(source, where, value))
    return out


def _fit_params(source: str, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FIT_PARAMS:
            raise ProfileError(f"{_where(source, 'model.params')}: unknown key {key!r}; "
                               f"allowed: {list(_FIT_PARAMS)}")
        integer, low, high = _FIT_PARAMS[key]
        number = _number(source, f"model.params.{key}", value)
        if (integer and not isinstance(value, int)) or not low <= number <= high:
            raise ProfileError(f"{_where(source, f'model.params.{key}')}: expected "
                               f"{'an integer' if integer else 'a number'} in "
                               f"[{low:g}, {high:g}], got {value!r}")
        out[str(key)] = value
    return out


def _mapping(source: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"{_where(source, key)}: expected a mapping, got "
                           f"{type(value).__name__}")
    return value


def _check_class(source: str, key: str, name: Any) -> str:
    allowed = [DEFAULT_CLASS, *OP_CLASSES]
    if name not in allowed:
        raise ProfileError(f"{_where(source, key)}: unknown op class {name!r}; allowed: "
                           f"{allowed}")
    return str(name)


def profile_from_dict(data: Any, source: str, path: Path | None = None) -> HardwareProfile:
    """Validate plain data into a profile; ``source`` (the file) prefixes every error."""
    data = _mapping(source, "(top level)", data)
    for key in data:
        if key not in _TOP_KEYS:
            raise ProfileError(f"{source}: unknown key {key!r}; allowed keys: {list(_TOP_KEYS)}")
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"{source}: missing required key {key!r}")
    for key in ("name", "device", "source"):
        if key in data and not isinstance(data[key], str):
            raise ProfileError(f"{_where(source, key)}: expected a string, got {data[key]!r}")
    if data["kind"] not in KINDS:
        raise ProfileError(f"{_where(source, 'kind')}: {data['kind']!r} is not one of "
                           f"{list(KINDS)}")
    if data["precision"] not in DTYPE_BYTES:
        raise ProfileError(f"{_where(source, 'precision')}: {data['precision']!r} is not one "
                           f"of {sorted(DTYPE_BYTES)}")
    runtime = data.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise ProfileError(f"{_where(source, 'runtime')}: {runtime!r} is not one of "
                           f"{list(RUNTIMES)}")
    machine = _mapping(source, "machine", data.get("machine") or {})
    for key, value in machine.items():
        if key not in MACHINE_KEYS:
            raise ProfileError(f"{_where(source, 'machine')}: unknown key {key!r}; allowed: "
                               f"{list(MACHINE_KEYS)}")
        if not isinstance(value, str):
            raise ProfileError(f"{_where(source, f'machine.{key}')}: expected a string, got "
                               f"{value!r:.80}")
    peak: dict[str, dict[str, float]] = {}
    for cls, table in _mapping(source, "peak_flops", data["peak_flops"]).items():
        cls = _check_class(source, "peak_flops", cls)
        peak[cls] = {}
        for dtype, value in _mapping(source, f"peak_flops.{cls}", table).items():
            if dtype not in DTYPE_BYTES:
                raise ProfileError(f"{_where(source, f'peak_flops.{cls}')}: unknown dtype "
                                   f"{dtype!r}; allowed: {sorted(DTYPE_BYTES)}")
            peak[cls][dtype] = _positive(source, f"peak_flops.{cls}.{dtype}", value)
    if DEFAULT_CLASS not in peak:
        raise ProfileError(f"{_where(source, 'peak_flops')}: needs a 'default' entry")
    if data["precision"] not in peak[DEFAULT_CLASS]:
        raise ProfileError(f"{_where(source, 'peak_flops.default')}: no figure for the "
                           f"profile's precision {data['precision']!r}")
    efficiency: dict[str, Efficiency] = {}
    for cls, item in _mapping(source, "efficiency", data["efficiency"]).items():
        cls = _check_class(source, "efficiency", cls)
        item = _mapping(source, f"efficiency.{cls}", item)
        for key in item:
            if key not in ("compute", "memory"):
                raise ProfileError(f"{_where(source, f'efficiency.{cls}')}: unknown key "
                                   f"{key!r}; allowed: ['compute', 'memory']")
        values = []
        for key in ("compute", "memory"):
            if key not in item:
                raise ProfileError(f"{_where(source, f'efficiency.{cls}')}: missing {key!r}")
            v = _positive(source, f"efficiency.{cls}.{key}", item[key])
            if v > 1:
                raise ProfileError(f"{_where(source, f'efficiency.{cls}.{key}')}: a fraction "
                                   f"of peak must be in (0, 1], got {v}")
            values.append(v)
        efficiency[cls] = Efficiency(*values)
    if DEFAULT_CLASS not in efficiency:
        raise ProfileError(f"{_where(source, 'efficiency')}: needs a 'default' entry")
    fusion_data = _mapping(source, "fusion", data.get("fusion", {}))
    for key, value in fusion_data.items():
        if key not in ("conv_norm_act", "residual_add"):
            raise ProfileError(f"{_where(source, 'fusion')}: unknown rule {key!r}; allowed: "
                               f"['conv_norm_act', 'residual_add']")
        if not isinstance(value, bool):
            raise ProfileError(f"{_where(source, f'fusion.{key}')}: expected true or false")
    derived = _mapping(source, "derived", data.get("derived", {}))
    for key, value in derived.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ProfileError(f"{_where(source, f'derived.{key}')}: expected a note (a "
                               f"string), got {value!r:.80}")
    model = None
    if data.get("model") is not None:
        m = _mapping(source, "model", data["model"])
        for key in m:
            if key not in ("kind", "measurements", "params", "calibration"):
                raise ProfileError(f"{_where(source, 'model')}: unknown key {key!r}; allowed:"
                                   f" ['kind', 'measurements', 'params', 'calibration']")
        if m.get("kind") not in MODEL_KINDS:
            raise ProfileError(f"{_where(source, 'model.kind')}: {m.get('kind')!r} is not one"
                               f" of {list(MODEL_KINDS)}")
        if m["kind"] != "roofline" and not isinstance(m.get("measurements"), str):
            raise ProfileError(f"{_where(source, 'model.measurements')}: a {m['kind']} model "
                               f"needs the path of its measurements (CSV)")
        calibration = _calibration(source, _mapping(source, "model.calibration",
                                                    m.get("calibration", {})))
        model = ModelConfig(m["kind"], m.get("measurements"),
                            _fit_params(source, _mapping(source, "model.params",
                                                         m.get("params", {}))),
                            calibration)
    return HardwareProfile(
        name=data["name"], device=data["device"], kind=data["kind"],
        precision=data["precision"], peak_flops=peak,
        memory_bandwidth=_positive(source, "memory_bandwidth", data["memory_bandwidth"]),
        efficiency=efficiency,
        kernel_overhead_us=_positive(source, "kernel_overhead_us",
                                     data["kernel_overhead_us"], allow_zero=True),
        fusion=FusionRules(**fusion_data),
        derived={str(k): str(v) for k, v in derived.items()},
        source=data.get("source", ""), model=model,
        validation=dict(_mapping(source, "validation", data.get("validation") or {})),
        path=path, runtime=runtime, machine={str(k): v for k, v in machine.items()},
    )


def load_profile(path: str | Path) -> HardwareProfile:
    """Read and validate one profile file."""
    path = Path(path)
    data = read_data_file(path, "profile", ProfileError)
    return profile_from_dict(data, str(path), path.resolve())


# -- registry ----------------------------------------------------------------------------


def profile_dirs() -> list[Path]:
    extra = os.environ.get("ARCHDESIGN_HARDWARE_PATH", "")
    return [Path(p) for p in extra.split(os.pathsep) if p] + [BUILTIN_DIR]


def _profile_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        if directory.is_dir():
            for f in sorted(directory.glob("*.yaml")):
                found.setdefault(f.stem, f)
    return found


def list_profiles() -> list[str]:
    """Names of the profiles in the registry directories."""
    return sorted(_profile_files())


def get_profile(name: str | Path) -> HardwareProfile:
    """A profile by registry name, or by path to a YAML file."""
    files = _profile_files()
    if str(name) in files:
        return load_profile(files[str(name)])
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_profile(path)
    raise ProfileError(f"hardware: unknown profile {str(name)!r}; known profiles: "
                       f"{sorted(files)} (or give the path of a profile YAML file)")
