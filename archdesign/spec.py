"""Architecture specs: a network described as frozen, validated, typed data.

An :class:`ArchSpec` is the single description of a network that every other part of
archdesign reads (through :func:`archdesign.layers.layers`). Specs validate on
construction, raising :class:`SpecError` naming the field and the allowed values, and
round-trip losslessly through JSON and YAML.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml

from archdesign.block_kinds import BLOCK_KINDS as _KIND_TABLE
from archdesign.block_kinds import BlockConfig
from archdesign.errors import InputError, read_data_file

SCHEMA_VERSION = 1
_T = TypeVar("_T")

#: A block kind: a name in :data:`archdesign.block_kinds.BLOCK_KINDS`.
BlockKind = str
Activation = Literal["relu", "relu6", "silu", "hswish", "gelu", "none"]
SEStyle = Literal["efficientnet", "mobilenetv3"]

BLOCK_KINDS: tuple[str, ...] = tuple(_KIND_TABLE)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
SE_STYLES: tuple[str, ...] = get_args(SEStyle)
#: The fields a block of a heterogeneous stage may set (:class:`BlockSpec`).
BLOCK_FIELDS = ("block", "kernel", "expansion", "hidden_width", "se_ratio", "activation",
                "pointwise_groups")

# The counting conventions every exported spec states (DESIGN.md, fvcore/pycls).
COUNTING_CONVENTIONS = {
    "flops": "multiply-accumulates of conv and linear layers (fvcore convention); "
    "bias additions, normalization, activation, pooling and residual adds are not counted",
    "params": "weights + biases + 2 per normalized channel + layer-scale factors",
    "activations": "output elements of every conv, linear and (non-global) pooling layer",
    "peak_activation_bytes": "max over executed layers of the bytes of all live tensors "
    "(elementwise ops run in place), for the given batch and dtype",
}


class SpecError(InputError):
    """An invalid architecture spec; the message names the field and what is allowed."""


def _check_int(where: str, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where}.{name}: expected an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise SpecError(f"{where}.{name}: {value} is outside the allowed range [{low}, {high}]")


def _check_float(where: str, name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise SpecError(f"{where}.{name}: expected a number in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise SpecError(f"{where}.{name}: {value} is outside the allowed range [{low}, {high}]")


def _check_choice(where: str, name: str, value: object, allowed: tuple[object, ...]) -> None:
    if isinstance(value, (dict, list)) or value not in allowed:
        raise SpecError(f"{where}.{name}: {value!r} is not one of {list(allowed)}")


Rule = Callable[[str, str, object], None]


def _int(low: int, high: int) -> Rule:
    return lambda where, name, value: _check_int(where, name, value, low, high)


def _float(low: float, high: float) -> Rule:
    return lambda where, name, value: _check_float(where, name, value, low, high)


def _choice(allowed: tuple[object, ...]) -> Rule:
    return lambda where, name, value: _check_choice(where, name, value, allowed)


def _int_choice(allowed: tuple[int, ...]) -> Rule:
    def check(where: str, name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}.{name}: expected an integer, one of {list(allowed)}, "
                            f"got {value!r}")
        _check_choice(where, name, value, allowed)
    return check


def _optional(rule: Rule) -> Rule:
    def check(where: str, name: str, value: object) -> None:
        if value is not None:
            rule(where, name, value)
    return check


def _flag(where: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{where}.{name}: expected true or false, got {value!r}")


def _odd_kernel(where: str, name: str, value: object) -> None:
    _check_int(where, name, value, 1, 15)
    if isinstance(value, int) and value % 2 == 0:
        raise SpecError(f"{where}.{name}: must be odd (1, 3, 5, ...), got {value}")


#: The allowed values of every field, by part of a spec: the one table construction
#: validates against and search-space files are checked against (every choice of every
#: parameter, see :mod:`archdesign.spaces`).
FIELD_RULES: dict[str, dict[str, Rule]] = {
    "spec": {"resolution": _int(8, 4096), "in_channels": _int(1, 64)},
    "stem": {"width": _int(1, 4096), "kernel": _int(1, 15), "stride": _int(1, 8),
             "pool": _flag, "activation": _optional(_choice(ACTIVATIONS))},
    "stage": {"block": _choice(BLOCK_KINDS), "width": _int(1, 16384), "depth": _int(1, 128),
              "stride": _int_choice((1, 2)), "kernel": _odd_kernel, "expansion": _float(0.01, 16.0),
              "group_width": _optional(_int(1, 16384)), "se_ratio": _float(0.0, 1.0),
              "activation": _choice(ACTIVATIONS), "hidden_width": _optional(_int(1, 65536)),
              "se_style": _choice(SE_STYLES), "pointwise_groups": _int(1, 64)},
    "head": {"num_classes": _int(1, 100000), "width": _int(0, 16384),
             "features": _int(0, 16384), "features_bias": _flag,
             "activation": _optional(_choice(ACTIVATIONS))},
}


def check_field(part: str, where: str, name: str, value: object) -> None:
    """Raise :class:`SpecError` unless ``value`` is allowed for field ``name`` of ``part``."""
    FIELD_RULES[part][name](where, name, value)


def _check_part(part: str, obj: object, names: tuple[str, ...] | None = None) -> None:
    for name in names or tuple(FIELD_RULES[part]):
        check_field(part, part, name, getattr(obj, name))


@dataclass(frozen=True, slots=True)
class StemSpec:
    """The input stem: one strided conv (+ norm + activation), optionally a 3x3/2 max pool.

    Its norm follows the first stage's block kind: ConvNeXt stems are a patchify conv with
    bias followed by LayerNorm; all others conv-BN-activation, with ``activation`` (None:
    the first stage's).
    """

    width: int = 32
    kernel: int = 3
    stride: int = 2
    pool: bool = False
    activation: Activation | None = None

    def __post_init__(self) -> None:
        _check_part("stem", self)


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """Per-block fields of a heterogeneous stage: each one set replaces the stage's."""

    block: BlockKind | None = None
    kernel: int | None = None
    expansion: float | None = None
    hidden_width: int | None = None
    se_ratio: float | None = None
    activation: Activation | None = None
    pointwise_groups: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True, slots=True)
class StageSpec:
    """A stage: ``depth`` blocks; the first carries ``stride``.

    ``block`` names a kind of :data:`archdesign.block_kinds.BLOCK_KINDS`. ``expansion`` means,
    by kind:
      - ``basic``, ``skip``: unused, must be 1 for basic;
      - ``bottleneck``: inner (bottleneck) width = round(width * expansion);
      - ``inverted_residual``, ``irf``: hidden width = round(block input width * expansion);
      - ``convnext``: MLP hidden width = round(width * expansion).
    ``hidden_width``, when set, is that inner width itself (DeepMAD's per-stage bottleneck
    widths) and replaces the expansion rule.
    ``group_width`` is the channels per group of a bottleneck's kxk conv (None: dense);
    inverted-residual and ConvNeXt kxk convs are always depthwise.
    ``se_ratio`` > 0 adds squeeze-excitation in the style ``se_style`` (see
    :meth:`archdesign.block_kinds.Program.squeeze_excite`).
    ``pointwise_groups``: groups of an ``irf`` block's 1x1 convs (FBNet's ``g2``).
    ``blocks``: per-block fields (:class:`BlockSpec`, one per block) for stages whose blocks
    differ (Once-for-All, FBNet); a field a block leaves unset is the stage's.
    """

    block: BlockKind
    width: int
    depth: int
    stride: int = 1
    kernel: int = 3
    expansion: float = 1.0
    group_width: int | None = None
    se_ratio: float = 0.0
    activation: Activation = "relu"
    hidden_width: int | None = None
    se_style: SEStyle = "efficientnet"
    pointwise_groups: int = 1
    blocks: tuple[BlockSpec, ...] = ()

    def validate(self, where: str) -> None:
        for name in ("block", "width", "depth", "stride", "group_width", "se_style"):
            check_field("stage", where, name, getattr(self, name))
        if not isinstance(self.blocks, tuple):
            raise SpecError(f"{where}.blocks: expected a list of per-block fields")
        if self.blocks and len(self.blocks) != self.depth:
            raise SpecError(f"{where}.blocks: {len(self.blocks)} entries for a stage of depth "
                            f"{self.depth}; give one per block")
        self._check_fields(where, self)
        for j, b in enumerate(self.blocks):
            if not isinstance(b, BlockSpec):
                raise SpecError(f"{where}.blocks[{j}]: expected a BlockSpec, got "
                                f"{type(b).__name__}")
            self._check_fields(f"{where}.blocks[{j}]", b)

    @staticmethod
    def _check_fields(where: str, f: StageSpec | BlockSpec) -> None:
        for name in BLOCK_FIELDS:  # a block leaves a field None to take the stage's
            value = getattr(f, name)
            if value is not None:
                check_field("stage", where, name, value)

    def block_configs(self) -> tuple[BlockConfig, ...]:
        """The fields of each of the stage's blocks, in order."""
        return _block_configs(self)

    @property
    def inner_width(self) -> int:
        """Bottleneck / MLP width for kinds defined relative to the stage width."""
        if self.hidden_width is not None:
            return self.hidden_width
        return max(1, round(self.width * self.expansion))


@lru_cache(maxsize=1 << 14)
def _block_configs(stage: StageSpec) -> tuple[BlockConfig, ...]:
    base = BlockConfig(stage.block, stage.kernel, stage.expansion, stage.hidden_width,
                       stage.group_width, stage.se_ratio, stage.se_style, stage.activation,
                       stage.pointwise_groups)
    if not stage.blocks:
        return (base,) * stage.depth
    return tuple(base._replace(**{k: v for k, v in b.to_dict().items()
                                  if k != "block"}, kind=b.block or stage.block)
                 for b in stage.blocks)


@dataclass(frozen=True, slots=True)
class HeadSpec:
    """Classifier head: optional 1x1 conv + BN + activation to ``width`` (0: none), global
    pool, optional linear + activation to ``features`` (0: none; MobileNetV3's 1280, with
    a bias unless ``features_bias`` is false), the classifier. ``activation`` None: the
    last stage's."""

    num_classes: int = 1000
    width: int = 0
    features: int = 0
    features_bias: bool = True
    activation: Activation | None = None

    def __post_init__(self) -> None:
        _check_part("head", self)


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """A whole network: input, stem, stages, head."""

    stages: tuple[StageSpec, ...]
    stem: StemSpec = field(default_factory=StemSpec)
    head: HeadSpec = field(default_factory=HeadSpec)
    resolution: int = 224
    in_channels: int = 3
    name: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple):
            object.__setattr__(self, "stages", tuple(self.stages))
        if self.schema_version != SCHEMA_VERSION:
            raise SpecError(f"schema_version: this archdesign reads version {SCHEMA_VERSION}, "
                            f"got {self.schema_version!r}")
        if not isinstance(self.name, str) or len(self.name) > 200:
            raise SpecError(f"spec.name: expected a string of at most 200 characters, got "
                            f"{self.name!r:.80}")
        _check_part("spec", self)
        if not self.stages:
            raise SpecError("stages: a network needs at least one stage")
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, StageSpec):
                raise SpecError(f"stages[{i}]: expected a StageSpec, got {type(stage).__name__}")
            stage.validate(f"stages[{i}]")
        kinds = [c.kind for s in self.stages for c in s.block_configs()]
        if "convnext" in kinds and any(k != "convnext" for k in kinds):
            raise SpecError("stages: convnext blocks cannot be mixed with other block kinds "
                            "(they use LayerNorm downsampling between stages)")
        c_in = self.stem.width
        for i, stage in enumerate(self.stages):
            for j, config in enumerate(stage.block_configs()):
                problem = _KIND_TABLE[config.kind].check(config, c_in, stage.width)
                if problem is not None:
                    where = f"stages[{i}]" + (f".blocks[{j}]" if stage.blocks else "")
                    raise SpecError(f"{where}.{problem}")
                c_in = stage.width
        downsample = self.stem.stride * (2 if self.stem.pool else 1)
        for stage in self.stages:
            downsample *= stage.stride
        if self.resolution < downsample:
            raise SpecError(f"resolution: {self.resolution} is smaller than the network's total "
                            f"stride {downsample}; allowed: >= {downsample}")

    # -- serialization -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = [dict(s) for s in data["stages"]]
        for stage, spec_stage in zip(data["stages"], self.stages, strict=True):
            stage["blocks"] = [b.to_dict() for b in spec_stage.blocks]
            if not stage["blocks"]:
                del stage["blocks"]
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "spec") -> ArchSpec:
        """Build a spec from plain data, rejecting unknown keys with a clear message."""
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a mapping, got {type(data).__name__}")
        _reject_unknown(source, data, cls)
        try:
            stages_data = data["stages"]
        except KeyError:
            raise SpecError(f"{source}: missing required key 'stages'") from None
        if not isinstance(stages_data, list):
            raise SpecError(f"{source}.stages: expected a list of stages")
        stages = []
        for i, item in enumerate(stages_data):
            where = f"{source}.stages[{i}]"
            if not isinstance(item, dict):
                raise SpecError(f"{where}: expected a mapping")
            _reject_unknown(where, item, StageSpec)
            for required in ("block", "width", "depth"):
                if required not in item:
                    raise SpecError(f"{where}: missing required key '{required}'")
            if "blocks" in item:
                item = {**item, "blocks": _block_specs(source, where, item["blocks"])}
            stages.append(_construct(source, StageSpec, item))
        kwargs = {k: v for k, v in data.items() if k not in ("stages", "stem", "head")}
        for key, sub in (("stem", StemSpec), ("head", HeadSpec)):
            if key in data:
                if not isinstance(data[key], dict):
                    raise SpecError(f"{source}.{key}: expected a mapping")
                _reject_unknown(f"{source}.{key}", data[key], sub)
                kwargs[key] = _construct(source, sub, data[key])
        return _construct(source, cls, {"stages": tuple(stages), **kwargs})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls, text: str, source: str = "spec") -> ArchSpec:
        return cls.from_dict(json.loads(text), source)

    @classmethod
    def from_yaml(cls, text: str, source: str = "spec") -> ArchSpec:
        return cls.from_dict(yaml.safe_load(text), source)

    def save(self, path: str | Path) -> None:
        """Write JSON or YAML by the file's suffix, atomically."""
        path = Path(path)
        from archdesign.files import atomic_write_text

        atomic_write_text(path, self.to_json() if path.suffix == ".json" else self.to_yaml())

    @property
    def total_stride(self) -> int:
        stride = self.stem.stride * (2 if self.stem.pool else 1)
        for stage in self.stages:
            stride *= stage.stride
        return stride


def _construct(source: str, cls: type[_T], kwargs: dict[str, Any]) -> _T:
    """``cls(**kwargs)`` with validation errors prefixed by where the data came from."""
    try:
        return cls(**kwargs)
    except SpecError as exc:
        if source == "spec":
            raise
        raise SpecError(f"{source}: {exc}") from None


def _block_specs(source: str, where: str, data: Any) -> tuple[BlockSpec, ...]:
    if not isinstance(data, list):
        raise SpecError(f"{where}.blocks: expected a list of per-block mappings")
    out = []
    for j, item in enumerate(data):
        if not isinstance(item, dict):
            raise SpecError(f"{where}.blocks[{j}]: expected a mapping")
        _reject_unknown(f"{where}.blocks[{j}]", item, BlockSpec)
        out.append(_construct(source, BlockSpec, item))
    return tuple(out)


def _reject_unknown(where: str, data: dict[str, Any], cls: type) -> None:
    allowed = [f.name for f in fields(cls)]
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}: unknown key {key!r}; allowed keys: {allowed}")


def load_spec(path: str | Path) -> ArchSpec:
    """Read a JSON or YAML spec file (safe loaders only); errors name the file."""
    path = Path(path)
    data = read_data_file(path, "spec file", SpecError)
    if isinstance(data, dict) and "spec" in data and "stages" not in data:
        data = data["spec"]  # an exported design: the spec plus metrics and provenance
    return ArchSpec.from_dict(data, str(path))
