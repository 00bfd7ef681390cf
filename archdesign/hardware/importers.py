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
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from archdesign.block_kinds import BlockArgs, Program
from archdesign.errors import InputError, read_data_file
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
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read TinyNAS table ({exc.strerror})") from None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        m = _TINYNAS_LINE.match(line)
        if m is None:
            raise InputError(f"{path}:{number}: not a TinyNAS entry "
                             f"'{{Regular|Depthwise,batch,c_in,h,w,c_out,k,stride,fused_add}} "
                             f"latency_ms': {line[:80]!r}")
        latency = float(m.group(10))
        if latency <= 0:
            continue
        b = int(m.group(2))
        if batch is not None and b != batch:
            continue
        c_in, h, w, c_out, k, stride, fused = (int(m.group(i)) for i in range(3, 10))
        records.append((tinynas_row(m.group(1), c_in, h, w, c_out, k, stride, fused), b,
                        dtype, latency, float("nan"), "train"))
    if not records:
        raise InputError(f"{path}: no measured entries"
                         + (f" for batch {batch}" if batch is not None else ""))
    return KernelTable.from_records(records)


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
    return h, w, c


def ofa_block(name: str, fields: dict[str, str], key: str,
              path: Path) -> tuple[object, tuple[object, ...]]:
    """The ``(fn, args)`` of the archdesign block an OFA entry measures."""
    h, w, c_in = _shape(fields["input"], key, path)
    if name == "expanded_conv":
        _, _, c_out = _shape(fields["output"], key, path)
        expand = float(fields["expand"])
        hidden = expand * c_in if expand <= 8 and c_in > 8 else expand  # ratio vs width
        act = "hswish" if fields.get("hs") == "1" else "relu"
        se_ratio = hidden / 4 / c_in if fields.get("se") == "1" else 0.0
        return block_layers, BlockArgs("inverted_residual", c_in, c_out, int(fields["stride"]),
                                       int(fields["kernel"]), h, w, expansion=hidden / c_in,
                                       se_ratio=se_ratio, activation=act)
    if name == "Conv":  # stem: 3x3/2 conv + BN + activation
        h_out, _, c_out = _shape(fields["output"], key, path)
        return stem_layers, StemArgs(c_in, h, c_out, 3, h // h_out, False, False, "relu")
    if name in ("Conv_1", "Conv_2"):  # 1x1 conv + activation (no pooling)
        _, _, c_out = _shape(fields["output"], key, path)
        return block_layers, BlockArgs("inverted_residual", c_in, c_out, 1, 1, h, w)
    if name in ("Logits", "AvgPool2D"):
        classes = int(fields["output"]) if name == "Logits" else 0
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
        rows = np.array(block_kernels(fn, args, rules).rows)
        if name == "AvgPool2D":
            rows = rows[rows[:, 0] == OP_CLASS_INDEX["pool"]]
        elif name == "Logits" and fields["input"].startswith("1x1x"):
            rows = rows[rows[:, 0] == OP_CLASS_INDEX["linear"]]
        mean = float(entry["mean"])
        std = float(entry["std"]) if "std" in entry else float(np.sqrt(float(entry.get("var")
                                                                             or 0.0)))
        weights = np.asarray(roofline_ms(rows), dtype=np.float64)
        share = weights / weights.sum()
        for row, part in zip(rows, share, strict=True):
            records.append((row, 1, dtype, mean * float(part), std / mean, "train"))
    logger.info("%s: %d entries -> %d kernels", path, len(data), len(records))
    return KernelTable.from_records(records)
