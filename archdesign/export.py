"""Exporting a design: a spec file with metrics and provenance, ONNX, TorchScript, or
plain PyTorch source (:mod:`archdesign.export_py`).

A design file is data: the spec, the counting conventions its figures follow, the
hardware profile it was judged on, the predicted metrics, and where it came from (space,
strategy, seed, trial, archdesign version). :func:`archdesign.spec.load_spec` reads it
back (it takes the ``spec`` key), so ``archdesign cost design.json`` recounts it.

ONNX uses PyTorch's TorchScript-based exporter (``dynamo=False``): on these plain conv
nets it gives the same graph as the dynamo exporter in about a tenth of the time. Every
ONNX file is checked: ONNX Runtime runs it on a random input and its output must match
PyTorch's.
"""

from __future__ import annotations

import json
import logging
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archdesign.errors import InputError
from archdesign.files import atomic_write_bytes, atomic_write_text, check_output
from archdesign.spec import COUNTING_CONVENTIONS, ArchSpec

logger = logging.getLogger(__name__)

FORMATS = ("json", "yaml", "onnx", "torch", "py")
#: The file names each format may be written to (and the format a name implies).
SUFFIXES = {"json": (".json",), "yaml": (".yaml", ".yml"), "onnx": (".onnx",),
            "torch": (".pt", ".pth", ".ts"), "py": (".py",)}
DESIGN_FORMAT_VERSION = 1
ONNX_OPSET = 17
#: Protobuf caps one ONNX file (weights included) at 2 GiB.
ONNX_MAX_BYTES = 2 << 30


def format_for(out: str | Path) -> str:
    """The format an output file's suffix implies (``net.onnx`` -> ``onnx``)."""
    suffix = Path(out).suffix.lower()
    for fmt, suffixes in SUFFIXES.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(f"{x} ({fmt})" for fmt, xs in SUFFIXES.items() for x in xs)
    raise InputError(f"--out {str(out)!r}: cannot tell the format from its suffix; name it "
                     f"one of {known}, or give --format")


def override(spec: ArchSpec, num_classes: int | None = None,
             resolution: int | None = None) -> ArchSpec:
    """``spec`` with another classifier size and/or input resolution (checked)."""
    if num_classes is None and resolution is None:
        return spec
    data = spec.to_dict()
    if resolution is not None:
        data["resolution"] = resolution
    if num_classes is not None:
        data["head"] = {**data.get("head", {}), "num_classes": num_classes}
    return ArchSpec.from_dict(data, "--num-classes/--resolution")


def design_document(spec: ArchSpec, metrics: Mapping[str, float], hardware: Mapping[str, Any],
                    provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The exported description of a design, as plain data."""
    from archdesign import __version__

    return {
        "archdesign_design": DESIGN_FORMAT_VERSION,
        "spec": spec.to_dict(),
        "counting_conventions": dict(COUNTING_CONVENTIONS),
        "metrics": dict(metrics),
        "hardware": dict(hardware),
        "provenance": {"archdesign_version": __version__, **provenance},
    }


def write_design(document: Mapping[str, Any], path: str | Path, fmt: str) -> Path:
    path = Path(path)
    text = (json.dumps(document, indent=2) + "\n" if fmt == "json"
            else yaml.safe_dump(dict(document), sort_keys=False))
    atomic_write_text(path, text)
    return path


@dataclass(frozen=True)
class OnnxCheck:
    max_abs_diff: float
    max_abs_output: float
    relative_diff: float


def export_onnx(spec: ArchSpec, path: str | Path, batch: int = 1, check: bool = True,
                tolerance: float = 1e-4, seed: int = 0) -> OnnxCheck | None:
    """Write ``spec``'s network as ONNX (dynamic batch) and check it against PyTorch.

    The check runs ONNX Runtime and PyTorch on the same random input; the largest
    difference relative to the largest output must be within ``tolerance`` (relative,
    because a freshly initialized network's outputs are tiny).
    """
    import torch

    from archdesign.build import build, check_fits
    from archdesign.cost import cost

    path = Path(path)
    if 4 * cost(spec).params > ONNX_MAX_BYTES:
        raise InputError(f"{path}: ONNX holds at most {ONNX_MAX_BYTES / 2**30:.0f} GiB of "
                         f"weights in one file; {spec.name or 'the network'} has "
                         f"{4 * cost(spec).params / 2**30:.1f} GiB")
    check_fits(spec, batch, str(path))
    model = build(spec).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, spec.in_channels, spec.resolution, spec.resolution,
                    generator=generator)
    tmp = path.with_name(f".{path.name}.export")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["input"],
                              output_names=["logits"], opset_version=ONNX_OPSET,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        result = check_onnx(tmp, model, x, tolerance) if check else None
        atomic_write_bytes(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return result


def check_onnx(path: str | Path, model: Any, x: Any, tolerance: float = 1e-4) -> OnnxCheck:
    """Run ``path`` in ONNX Runtime on ``x`` and compare with ``model(x)``."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).numpy()
    if got.shape != want.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} differs from PyTorch's "
                           f"{want.shape}")
    diff = float(np.max(np.abs(got - want)))
    scale = float(np.max(np.abs(want)))
    relative = diff / scale if scale > 0 else diff
    if relative > tolerance:
        raise RuntimeError(f"ONNX Runtime output differs from PyTorch: max |diff| {diff:.3g} "
                           f"against max |output| {scale:.3g} (relative {relative:.3g} > "
                           f"{tolerance})")
    return OnnxCheck(diff, scale, relative)


def export_torchscript(spec: ArchSpec, path: str | Path, batch: int = 1) -> Path:
    """A TorchScript file of the network: ``torch.jit.load(path)`` needs no archdesign."""
    import io

    import torch

    from archdesign.build import build, check_fits

    check_fits(spec, batch, str(path))
    model = build(spec).eval()
    x = torch.randn(batch, spec.in_channels, spec.resolution, spec.resolution)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


# -- choosing a trial of a run ------------------------------------------------------------------


def parse_conditions(text: str) -> dict[str, float]:
    """``"latency=2ms,params=5M"`` -> ``{"latency": 2.0, "params": 5e6}``."""
    from archdesign.metrics import parse_quantity

    out: dict[str, float] = {}
    for item in (s for s in re.split(r"[,\s]+", text.strip()) if s):
        name, sep, amount = item.partition("=")
        if not sep:
            raise InputError(f"--best-under: expected METRIC=AMOUNT (e.g. latency=2ms), got "
                             f"{item!r}")
        out[name.strip()] = parse_quantity(name.strip(), amount)
    if not out:
        raise InputError("--best-under: give at least one METRIC=AMOUNT, e.g. latency=2ms")
    return out


def best_under(trials: list[Any], conditions: Mapping[str, float], rank_by: str,
               maximize: bool) -> Any:
    """The feasible complete trial that is best in ``rank_by`` under every condition."""
    from archdesign.metrics import feasible

    fitting = [t for t in trials if feasible(t)
               and all(t.user_attrs["metrics"][k] <= v for k, v in conditions.items())]
    if not fitting:
        from archdesign.metrics import format_budgets

        raise InputError(f"--best-under: no feasible trial of the run has "
                         f"{format_budgets(conditions)}")

    def key(t: Any) -> tuple[float, int]:
        value = t.user_attrs["metrics"][rank_by]
        return (-value if maximize else value, t.number)

    return min(fitting, key=key)


def provenance(run_path: str | Path, config: Mapping[str, Any], trial: int) -> dict[str, Any]:
    return {"run": str(run_path), "space": config.get("space"),
            "strategy": config.get("strategy"), "seed": config.get("seed"),
            "objectives": list(config.get("objectives", [])),
            "budgets": dict(config.get("budgets", {})), "trial": trial,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    fmt: str
    trial: int
    spec: ArchSpec
    metrics: dict[str, float]
    onnx_check: OnnxCheck | None = None


def export_from_run(run_dir: str | Path, fmt: str | None, out: str | Path,
                    trial: int | None = None, conditions: Mapping[str, float] | None = None,
                    num_classes: int | None = None,
                    resolution: int | None = None) -> ExportResult:
    """Export one trial of a run (by number, or the best under ``conditions``) as ``fmt``
    (None: the one ``out``'s suffix implies), optionally with another number of classes
    or input resolution (the metrics of a design file are then those of the changed
    network, on the run's hardware)."""
    from optuna.trial import TrialState

    from archdesign.hardware import get_profile
    from archdesign.metrics import METRICS
    from archdesign.report import load_trials
    from archdesign.runs import RunDir
    from archdesign.search import SearchConfig

    if fmt is None:
        fmt = format_for(out)
    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {list(FORMATS)}")
    if (trial is None) == (conditions is None):
        raise InputError("give exactly one of --trial ID or --best-under METRIC=AMOUNT")
    out = check_output("--out", out, SUFFIXES[fmt])
    run = RunDir(run_dir).require()
    stored = run.read_config().get("search") or {}
    config = SearchConfig.from_dict(stored, str(run.config_path))
    trials = load_trials(run, config)
    if trial is not None:
        chosen = next((t for t in trials if t.number == trial), None)
        if chosen is None or chosen.state != TrialState.COMPLETE:
            why = "is not in the run" if chosen is None else \
                f"failed ({chosen.user_attrs.get('error', 'no network')})"
            raise InputError(f"--trial {trial}: that trial {why}; the run has trials 0.."
                             f"{len(trials) - 1} (see `archdesign pareto {run.path}`)")
    else:
        assert conditions is not None
        rank_by = "score" if "score" in config.objectives else config.objectives[0]
        chosen = best_under(trials, conditions, rank_by, METRICS[rank_by].maximize)
    spec = ArchSpec.from_dict(chosen.user_attrs["spec"], f"trial {chosen.number}")
    metrics = dict(chosen.user_attrs["metrics"])
    changed = override(spec, num_classes, resolution)
    if changed != spec:
        from archdesign.evaluate import LocalEvaluator

        judged = run.with_sources(config, always=True)
        metrics = LocalEvaluator(judged.eval_config).metrics([changed])[0]
        spec = changed
    over = sorted(name for name, v in chosen.constraints.items() if v > 0)
    if over:
        logger.warning("trial %d is over the run's budgets for %s", chosen.number,
                       ", ".join(over))
    check = None
    if fmt in ("json", "yaml"):
        profile = get_profile(run.with_sources(config, always=True).hardware)
        hardware = {"name": profile.name, "device": profile.device,
                    "latency_model": config.latency_model or
                    (profile.model.kind if profile.model else "roofline"),
                    "batch": config.batch, "dtype": config.dtype or profile.precision,
                    "profile": profile.to_dict()}
        origin = provenance(run.path, stored, chosen.number)
        overrides = {k: v for k, v in (("num_classes", num_classes),
                                       ("resolution", resolution)) if v is not None}
        if overrides:
            origin["overrides"] = overrides
        write_design(design_document(spec, metrics, hardware, origin), out, fmt)
    elif fmt == "onnx":
        check = export_onnx(spec, out)
    elif fmt == "py":
        from archdesign.export_py import export_python

        export_python(spec, out, f"trial {chosen.number} of {run.path}")
    else:
        export_torchscript(spec, out)
    logger.info("exported trial %d of %s as %s to %s", chosen.number, run.path, fmt, out)
    return ExportResult(out, fmt, chosen.number, spec, metrics, check)
