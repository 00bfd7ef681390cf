"""Importers for published latency tables, into :class:`KernelTable` rows.

- **TinyNAS** (``conv_data.out``, TensorRT on a V100): one fused conv kernel per line,
  ``{Regular|Depthwise,batch,c_in,h,w,c_out,k,stride,fused_add} latency_ms``, ``-1`` = not
  measured. Convs are ``same``-padded; TensorRT fuses bias/BN and the activation, and with
  ``fused_add`` the residual add. The dtype comes from the file suffix (``.fp16``,
  ``.int8``; none: float32).
- **Once-for-All / ProxylessNAS** (YAML, Note10 CPU): mean ms per *block*, keyed
  ``expanded_conv-input:HxWxC-output:HxWxC-expand:E-kernel:K-stride:S-idskip:I[-se:.-hs:.]``
  plus ``Conv`` (stem), ``Conv_1``/``Conv_2`` (1x1 head convs), ``AvgPool2D``, ``Logits``.
  ``expand`` is the hidden width in the OFA tables and the ratio in ProxylessNAS (values
  <= 8). A block is expanded with :mod:`archdesign.layers` and its measured time is split
  over its fused kernels in proportion to their roofline times, so every block's sum is
  reproduced exactly (the per-kernel split is an estimate: say so when you show it).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from archdesign.block_kinds import BlockArgs, Program
from archdesign.errors import MAX_TABLE_BYTES, InputError, read_data_file, read_text_file
from archdesign.hardware.kernels import (
    KERNEL_COLUMNS,
    OP_CLASS_INDEX,
    FusionRules,
    block_kernels,
)
from archdesign.hardware.table import KernelTable
from archdesign.layers import HeadArgs, StemArgs, block_layers, head_layers, stem_layers
from archdesign.ops import layer_flops, layer_params, op_class

logger = logging.getLogger(__name__)

FORMATS = ("tinynas", "ofa")
_TINYNAS_LINE = re.compile(
    r"^\{(Regular|Depthwise),(\d+),(\d+),(\d+),(\d+),(\d+),(\d+),(\d+),([01])\}\s+(-?[\d.eE+-]+)$")


def tinynas_dtype(path: str | Path) -> str:
    suffix = Path(path).suffix
    return {".fp16": "float16", ".int8": "int8"}.get(suffix, "float32")


def tinynas_row(kind: str, c_in: int, h: int, w: int, c_out: int, k: int, stride: int,
                fused_add: int) -> list[float]:
    """The kernel row of one TinyNAS entry (same padding; BN and activation fused)."""
    groups = c_in if kind == "Depthwise" else 1
    p = Program(c_in, h, w)
    conv = p.layers[p.conv("conv", c_out, k, stride, groups)]
    out = conv.out_elements
    fused_ops = 3 if fused_add else 2  # bn + act, or bn + add + act
    row = [OP_CLASS_INDEX[str(op_class(conv))], c_in, h, w, c_out, conv.h_out, conv.w_out,
           k, stride, groups, fused_add, fused_ops, layer_flops(conv),
           conv.in_elements + (out if fused_add else 0), out, layer_params(conv)]
    assert len(row) == len(KERNEL_COLUMNS)
    return [float(v) for v in row]


def read_tinynas(path: str | Path, batch: int | None = None,
                 dtype: str | None = None) -> KernelTable:
    """Measured entries of a TinyNAS table (``batch``: keep only that batch size)."""
    path = Path(path)
    dtype = dtype or tinynas_dtype(path)
    records = []
    lines = read_text_file(path, "TinyNAS table", max_bytes=MAX_TABLE_BYTES).splitlines()
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        m = _TINYNAS_LINE.match(line)
        if m is None:
            raise InputError(f"{path}:{number}: not a TinyNAS entry "
                             f"'{{Regular|Depthwise,batch,c_in,h,w,c_out,k,stride,fused_add}} "
                             f"latency_ms': {line[:80]!r}")
        try:
            latency = float(m.group(10))
        except ValueError:
            raise InputError(f"{path}:{number}: latency {m.group(10)!r} is not a number") \
                from None
        if latency == -1:  # the table's mark for "not measured"
            continue
        if not (math.isfinite(latency) and latency > 0):
            raise InputError(f"{path}:{number}: latency must be a positive number of ms (or "
                             f"-1: not measured), got {m.group(10)}")
        b = int(m.group(2))
        c_in, h, w, c_out, k, stride, fused = (int(m.group(i)) for i in range(3, 10))
        _check_tinynas_shape(path, number, m.group(1), b, c_in, h, w, c_out, k, stride)
        if batch is not None and b != batch:
            continue
        records.append((tinynas_row(m.group(1), c_in, h, w, c_out, k, stride, fused), b,
                        dtype, latency, float("nan"), "train"))
    if not records:
        raise InputError(f"{path}: no measured entries"
                         + (f" for batch {batch}" if batch is not None else ""))
    return KernelTable.from_records(records)


def _check_tinynas_shape(path: Path, number: int, kind: str, batch: int, c_in: int, h: int,
                         w: int, c_out: int, k: int, stride: int) -> None:
    for name, value in (("batch", batch), ("c_in", c_in), ("h", h), ("w", w),
                        ("c_out", c_out), ("k", k), ("stride", stride)):
        if not 1 <= value <= 1 << 16:
            raise InputError(f"{path}:{number}: {name} must be in [1, 65536], got {value}")
    if kind == "Depthwise" and c_out % c_in:
        raise InputError(f"{path}:{number}: a depthwise conv needs c_out a multiple of c_in, "
                         f"got c_in {c_in}, c_out {c_out}")


def random_split(n: int, train_fraction: float, seed: int = 0) -> np.ndarray:
    """``train``/``test`` labels: a seeded random ``train_fraction`` of n for training."""
    if not 0 < train_fraction <= 1:
        raise InputError(f"train fraction: must be in (0, 1], got {train_fraction}")
    rng = np.random.default_rng(seed)
    labels = np.full(n, "test", dtype=object)
    labels[rng.permutation(n)[: max(1, round(n * train_fraction))]] = "train"
    return labels


# -- Once-for-All ------------------------------------------------------------------------------

_SHAPE = re.compile(r"(\d+)x(\d+)x(\d+)")


def _parse_key(key: str, path: Path) -> tuple[str, dict[str, str]]:
    parts = key.split("-")
    name = parts[0]
    fields: dict[str, str] = {}
    for part in parts[1:]:
        if ":" not in part:
            raise InputError(f"{path}: key {key!r}: field {part!r} has no ':'")
        k, v = part.split(":", 1)
        fields[k] = v
    return name, fields


def _shape(value: str, key: str, path: Path) -> tuple[int, int, int]:
    m = _SHAPE.fullmatch(value)
    if m is None:
        raise InputError(f"{path}: key {key!r}: shape {value!r} is not HxWxC")
    h, w, c = (int(m.group(i)) for i in (1, 2, 3))
    if not all(1 <= v <= 1 << 16 for v in (h, w, c)):
        raise InputError(f"{path}: key {key!r}: shape {value!r} needs sizes in [1, 65536]")
    return h, w, c


def _field(fields: dict[str, str], name: str, key: str, path: Path) -> str:
    try:
        return fields[name]
    except KeyError:
        raise InputError(f"{path}: key {key!r}: missing field {name!r}") from None


def _number(fields: dict[str, str], name: str, key: str, path: Path, low: float,
            integer: bool = True) -> float:
    text = _field(fields, name, key, path)
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        raise InputError(f"{path}: key {key!r}: {name} {text!r} is not "
                         f"{'an integer' if integer else 'a number'}") from None
    if not (math.isfinite(value) and low <= value <= 1 << 16):
        raise InputError(f"{path}: key {key!r}: {name} must be in [{low:g}, 65536], got "
                         f"{text}")
    return value


def _measured(value: object, name: str, key: object, path: Path, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{path}: key {key!r}: {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{path}: key {key!r}: {name} must be a number, got {value!r}") \
            from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise InputError(f"{path}: key {key!r}: {name} must be a finite number "
                         f"{'> 0' if positive else '>= 0'}, got {value!r}")
    return number


def ofa_block(name: str, fields: dict[str, str], key: str,
              path: Path) -> tuple[object, tuple[object, ...]]:
    """The ``(fn, args)`` of the archdesign block an OFA entry measures."""
    h, w, c_in = _shape(_field(fields, "input", key, path), key, path)
    if name == "expanded_conv":
        _, _, c_out = _shape(_field(fields, "output", key, path), key, path)
        expand = _number(fields, "expand", key, path, 0.01, integer=False)
        hidden = expand * c_in if expand <= 8 and c_in > 8 else expand  # ratio vs width
        act = "hswish" if fields.get("hs") == "1" else "relu"
        se_ratio = hidden / 4 / c_in if fields.get("se") == "1" else 0.0
        stride = int(_number(fields, "stride", key, path, 1))
        kernel = int(_number(fields, "kernel", key, path, 1))
        if stride not in (1, 2) or kernel % 2 == 0 or kernel > 15:
            raise InputError(f"{path}: key {key!r}: expected stride 1 or 2 and an odd kernel "
                             f"up to 15, got stride {stride}, kernel {kernel}")
        return block_layers, BlockArgs("inverted_residual", c_in, c_out, stride, kernel, h, w,
                                       expansion=hidden / c_in, se_ratio=se_ratio,
                                       activation=act)
    if name == "Conv":  # stem: 3x3/2 conv + BN + activation
        h_out, _, c_out = _shape(_field(fields, "output", key, path), key, path)
        if h_out > h:
            raise InputError(f"{path}: key {key!r}: the output is larger than the input")
        return stem_layers, StemArgs(c_in, h, c_out, 3, h // h_out, False, False, "relu")
    if name in ("Conv_1", "Conv_2"):  # 1x1 conv + activation (no pooling)
        _, _, c_out = _shape(_field(fields, "output", key, path), key, path)
        return block_layers, BlockArgs("inverted_residual", c_in, c_out, 1, 1, h, w)
    if name in ("Logits", "AvgPool2D"):
        classes = int(_number(fields, "output", key, path, 1)) if name == "Logits" else 0
        return head_layers, HeadArgs(c_in, h, w, 0, 0, True, max(classes, 1), False, "relu")
    raise InputError(f"{path}: key {key!r}: unknown layer type {name!r}; known: "
                     f"expanded_conv, Conv, Conv_1, Conv_2, AvgPool2D, Logits")


def read_ofa(path: str | Path, rules: FusionRules,
             roofline_ms: Callable[[np.ndarray], np.ndarray],
             dtype: str = "float32") -> KernelTable:
    """Kernel rows of an OFA/ProxylessNAS table; ``roofline_ms(rows)`` weighs the split."""
    path = Path(path)
    data = read_data_file(path, "OFA table")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of layer keys to {{count, mean, ...}}")
    records = []
    for key, entry in data.items():
        if not isinstance(entry, dict) or "mean" not in entry:
            raise InputError(f"{path}: key {key!r}: missing 'mean'")
        name, fields = _parse_key(str(key), path)
        fn, args = ofa_block(name, fields, str(key), path)
        try:
            rows = np.array(block_kernels(fn, args, rules).rows)
        except (ValueError, ArithmeticError) as exc:  # shapes no block of the kind has
            raise InputError(f"{path}: key {key!r}: not a block archdesign can expand "
                             f"({exc})") from None
        if name == "AvgPool2D":
            rows = rows[rows[:, 0] == OP_CLASS_INDEX["pool"]]
        elif name == "Logits" and fields["input"].startswith("1x1x"):
            rows = rows[rows[:, 0] == OP_CLASS_INDEX["linear"]]
        mean = _measured(entry["mean"], "mean", key, path, positive=True)
        if "std" in entry:
            std = _measured(entry["std"], "std", key, path, positive=False)
        else:
            std = float(np.sqrt(_measured(entry.get("var") or 0.0, "var", key, path,
                                          positive=False)))
        weights = np.asarray(roofline_ms(rows), dtype=np.float64)
        if not (len(weights) and np.isfinite(weights).all() and weights.sum() > 0):
            raise InputError(f"{path}: key {key!r}: the entry measures no kernel archdesign "
                             f"can time")
        share = weights / weights.sum()
        for row, part in zip(rows, share, strict=True):
            records.append((row, 1, dtype, mean * float(part), std / mean, "train"))
    logger.info("%s: %d entries -> %d kernels", path, len(data), len(records))
    return KernelTable.from_records(records)
