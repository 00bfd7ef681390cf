"""Running a network in a deployment runtime on this machine, and knowing which machine.

A profile names the runtime its latencies come from (``runtime``) and, when it was
measured here by ``profile measure``, the machine (``machine``: CPU model name from
``/proc/cpuinfo``, device, GPU name). Two runtimes can time a network on this machine:

- ``onnxruntime`` (the default on CPU): the network exported by archdesign's ONNX
  exporter, run by an ``InferenceSession`` with fixed intra-op threads, one inter-op
  thread, sequential execution and every graph optimization (what a CPU deployment runs);
- ``torch``: PyTorch eager, in inference mode (CPU or CUDA).

:func:`require_this_machine` is what ``latency --measure`` and ``search --measure`` ask
before timing: a profile of another device (a datasheet, HELP's GPUs, a phone) must not
be compared with a timing of this machine.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

from archdesign.errors import InputError
from archdesign.hardware.profile import HardwareProfile
from archdesign.spec import ArchSpec

#: Runtimes this machine can time networks in, per device.
LOCAL_RUNTIMES = {"cpu": ("onnxruntime", "torch"), "cuda": ("torch",)}
DEFAULT_RUNTIME = {"cpu": "onnxruntime", "cuda": "torch"}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def this_machine(device: str = "cpu") -> dict[str, str]:
    """What a profile measured here records as its ``machine``."""
    machine = {"cpu": cpu_model(), "device": device}
    if device == "cuda":
        import torch

        machine["gpu"] = str(torch.cuda.get_device_name())
    return machine


def check_runtime(runtime: str, device: str) -> None:
    allowed = LOCAL_RUNTIMES.get(device, ())
    if runtime not in allowed:
        raise InputError(f"--runtime: {runtime!r} cannot time networks on {device} here; "
                         f"allowed: {list(allowed)}")


def require_this_machine(profile: HardwareProfile, device: str = "cpu",
                         runtime: str | None = None) -> str:
    """The runtime to time ``profile``'s networks in here, or an InputError saying why its
    predictions must not be compared with a timing of this machine (``runtime``: the one
    the caller will time in, when it cannot choose)."""
    here = this_machine(device)
    advice = ("measure this machine with `archdesign profile measure --out local.yaml` and "
              "give --hardware local.yaml")
    where = f"profile {profile.name!r}"
    if not profile.machine:
        what = (f"measured in {profile.runtime} on another device ({profile.device})"
                if profile.runtime else f"a datasheet profile of {profile.device}")
        raise InputError(f"--measure: {where} is not of this machine ({what}); timing "
                         f"{here['cpu']} would compare another device's prediction with "
                         f"this one; {advice}")
    for key in ("cpu", "device", "gpu"):
        if profile.machine.get(key) != here.get(key):
            raise InputError(f"--measure: {where} was measured on {key} "
                             f"{profile.machine.get(key)!r}, this machine's is "
                             f"{here.get(key)!r}; {advice}")
    wanted = profile.runtime or DEFAULT_RUNTIME[device]
    if runtime is not None and runtime != wanted:
        raise InputError(f"--measure: {where} was measured in {wanted}, this command times "
                         f"in {runtime}; measure a profile in {runtime} (`archdesign profile "
                         f"measure --runtime {runtime}`)")
    check_runtime(wanted, device)
    return wanted


def onnx_callable(spec: ArchSpec, batch: int, threads: int) -> Callable[[], object]:
    """``spec`` exported to ONNX and run by ONNX Runtime on ``threads`` CPU threads."""
    import numpy as np
    import onnxruntime as ort

    from archdesign.export import export_onnx

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle workers sleep instead of spinning: on a shared CPU a spinning pool steals the
    # cores the other threads are timed on
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory(prefix="archdesign-onnx-") as tmp:
        path = Path(tmp) / "network.onnx"
        export_onnx(spec, path, batch, check=False)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(
        (batch, spec.in_channels, spec.resolution, spec.resolution)).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}

    def run() -> object:
        return session.run(None, feed)

    return run


def torch_callable(spec: ArchSpec, batch: int, device: str) -> Callable[[], object]:
    """``spec`` built in PyTorch and run eagerly in inference mode on ``device``."""
    import torch

    from archdesign.build import build, check_fits

    check_fits(spec, batch, "--batch")
    model = build(spec).eval().to(device)
    x = torch.randn(batch, spec.in_channels, spec.resolution, spec.resolution, device=device)

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def network_callable(spec: ArchSpec, batch: int, runtime: str, device: str = "cpu",
                     threads: int = 1) -> Callable[[], object]:
    """One inference of ``spec`` at ``batch`` in ``runtime`` (threads set by the caller for
    torch, by the session for ONNX Runtime)."""
    check_runtime(runtime, device)
    if runtime == "onnxruntime":
        return onnx_callable(spec, batch, threads)
    return torch_callable(spec, batch, device)
