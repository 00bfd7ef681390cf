"""The bad-input corpus: a table of files and command lines a hostile or careless user
might give, each of which must exit with code 2 and a message naming the file or option.

A case is ``(id, argv, expected, files)``: ``files`` maps names to contents (written into
the case's working directory; :data:`FIFO` and :data:`BIG` make a named pipe and a sparse
file too large to read), ``argv`` may name them and ``{run}`` (a small finished search),
and ``expected`` is a piece of the message (compared with whitespace collapsed).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
FIFO = object()
BIG = object()


class Case(NamedTuple):
    id: str
    argv: list[str]
    expected: str
    files: dict[str, Any]


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


GOOD_SPEC = {"name": "t", "resolution": 64,
             "stages": [{"block": "basic", "width": 16, "depth": 1, "stride": 2},
                        {"block": "basic", "width": 32, "depth": 1, "stride": 2}]}


def _spec(change: dict[str, Any] | None = None, stage: dict[str, Any] | None = None) -> str:
    data = copy.deepcopy(GOOD_SPEC)
    data.update(change or {})
    data["stages"][0].update(stage or {})
    return _yaml(data)


_BOMB = "".join(f"{a}: &{a} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['x'] * 9)}]\n"
                for a, p in zip("abcdefgh", ["", *"abcdefg"], strict=True))

# name -> contents of a spec file that no command may accept
BAD_SPECS: dict[str, Any] = {
    "latin1": b"name: caf\xe9\n",
    "binary": b"\x00\x01\xff\xfe",
    "deep-yaml": "[" * 5000 + "]" * 5000,
    "alias-bomb": _BOMB + "name: *h\n" + _spec()[len("name: t\n"):],
    "not-yaml": "stages: [\n  - {",
    "tab-indent": "stages:\n\t- block: basic",
    "empty": "",
    "a-list": "[1, 2, 3]",
    "a-scalar": "42",
    "python-tag": '!!python/object/apply:os.system ["echo owned"]',
    "no-stages": "name: x\n",
    "zero-stages": "stages: []\n",
    "stages-number": "stages: 3\n",
    "stage-number": "stages: [3]\n",
    "unknown-key": _spec({"colour": "red"}),
    "unknown-stage-key": _spec(stage={"colour": "red"}),
    "no-width": _yaml({"stages": [{"block": "basic", "depth": 1}]}),
    "width-0": _spec(stage={"width": 0}),
    "width-1e9": _spec(stage={"width": 10**9}),
    "width-text": _spec(stage={"width": "wide"}),
    "width-bool": _spec(stage={"width": True}),
    "width-float": _spec(stage={"width": 16.5}),
    "depth-neg": _spec(stage={"depth": -5}),
    "depth-1e8": _spec(stage={"depth": 10**8}),
    "stride-float": _spec(stage={"stride": 2.0}),
    "stride-3": _spec(stage={"stride": 3}),
    "kernel-even": _spec(stage={"kernel": 4}),
    "kernel-0": _spec(stage={"kernel": 0}),
    "kernel-list": _spec(stage={"kernel": [3, 5]}),
    "expansion-nan": _spec(stage={"expansion": float("nan")}),
    "expansion-inf": _spec(stage={"expansion": float("inf")}),
    "expansion-neg": _spec(stage={"block": "inverted_residual", "expansion": -1.0}),
    "se-ratio-2": _spec(stage={"se_ratio": 2.0}),
    "activation-tanh": _spec(stage={"activation": "tanh"}),
    "block-unknown": _spec(stage={"block": "transformer"}),
    "block-null": _spec(stage={"block": None}),
    "block-dict": _spec(stage={"block": {"a": 1}}),
    "group-width-0": _spec(stage={"block": "bottleneck", "group_width": 0}),
    "se-style": _spec(stage={"se_style": "squeeze"}),
    "pw-groups-1000": _spec(stage={"block": "irf", "pointwise_groups": 1000}),
    "hidden-width-0": _spec(stage={"block": "bottleneck", "hidden_width": 0}),
    "blocks-mismatch": _spec(stage={"blocks": [{"kernel": 3}, {"kernel": 5}]}),
    "blocks-number": _spec(stage={"blocks": 7}),
    "blocks-unknown": _spec(stage={"blocks": [{"stride": 2}]}),
    "blocks-even-kernel": _spec(stage={"blocks": [{"kernel": 2}]}),
    "resolution-4": _spec({"resolution": 4}),
    "resolution-1e6": _spec({"resolution": 10**6}),
    "resolution-text": _spec({"resolution": "224px"}),
    "in-channels-0": _spec({"in_channels": 0}),
    "name-list": _spec({"name": [1, 2]}),
    "name-long": _spec({"name": "n" * 10000}),
    "schema-2": _spec({"schema_version": 2}),
    "head-classes-0": _spec({"head": {"num_classes": 0}}),
    "head-unknown": _spec({"head": {"dropout": 0.2}}),
    "head-text": _spec({"head": "big"}),
    "stem-stride-100": _spec({"stem": {"stride": 100}}),
    "stem-pool-text": _spec({"stem": {"pool": "yes"}}),
    "stem-width-neg": _spec({"stem": {"width": -32}}),
    "convnext-mixed": _yaml({"stages": [{"block": "convnext", "width": 16, "depth": 1},
                                        {"block": "basic", "width": 32, "depth": 1}]}),
    "design-no-spec": _yaml({"spec": "nothing"}),
}


def _spec_cases() -> list[Case]:
    cases = []
    commands = {"cost": [], "latency": ["--hardware", "x86-avx2"], "score": [],
                "build": ["--torchscript", "out.pt"]}
    for command, extra in commands.items():
        for name, content in BAD_SPECS.items():
            if command != "cost" and name not in _SPEC_SAMPLE:
                continue
            suffix = ".json" if name == "design-no-spec" else ".yaml"
            cases.append(Case(f"{command}-spec-{name}", [command, f"{name}{suffix}", *extra],
                              f"{name}{suffix}", {f"{name}{suffix}": content}))
        cases += [
            Case(f"{command}-fifo", [command, "pipe.yaml", *extra], "pipe.yaml",
                 {"pipe.yaml": FIFO}),
            Case(f"{command}-dev-zero", [command, "/dev/zero", *extra], "/dev/zero", {}),
            Case(f"{command}-directory", [command, "adir", *extra], "adir", {"adir/x": ""}),
            Case(f"{command}-missing", [command, "missing.yaml", *extra], "missing.yaml", {}),
            Case(f"{command}-huge", [command, "huge.yaml", *extra], "huge.yaml",
                 {"huge.yaml": BIG}),
        ]
    cases.append(Case("cost-json-deep", ["cost", "deep.json"], "deep.json",
                      {"deep.json": "[" * 100000 + "]" * 100000}))
    cases.append(Case("cost-json-garbage", ["cost", "bad.json"], "bad.json",
                      {"bad.json": '{"stages": [}'}))
    return cases


_SPEC_SAMPLE = {"latin1", "deep-yaml", "alias-bomb", "not-yaml", "empty", "python-tag",
                "stride-float", "kernel-even", "expansion-nan", "block-dict", "name-list",
                "resolution-4", "width-1e9"}

# -- search spaces ---------------------------------------------------------------------------

_STAGED = yaml.safe_load((ROOT / "search_spaces" / "resnet-basic.yaml").read_text())
_REGNET = yaml.safe_load((ROOT / "search_spaces" / "regnet.yaml").read_text())


def _staged(change: dict[str, Any] | None = None, stage: dict[str, Any] | None = None,
            drop: str | None = None) -> str:
    data = copy.deepcopy(_STAGED)
    data.update(change or {})
    if stage:
        data["stages"][0].update(stage)
    if drop:
        del data[drop]
    return _yaml(data)


def _regnet(parameters: dict[str, Any] | None = None, **change: Any) -> str:
    data = copy.deepcopy(_REGNET)
    data["parameters"].update(parameters or {})
    data.update(change)
    return _yaml(data)


BAD_SPACES: dict[str, Any] = {
    "latin1": b"name: r\xe9snet\n",
    "alias-bomb": _BOMB + "description: *h\n" + _staged(),
    "deep": "[" * 3000 + "]" * 3000,
    "not-a-mapping": "- 1\n- 2\n",
    "no-family": _staged(drop="family"),
    "family-unknown": _staged({"family": "transformer"}),
    "schema-9": _staged({"schema_version": 9}),
    "unknown-key": _staged({"colour": "red"}),
    "kernel-even-choice": _staged(stage={"kernel": {"choices": [3, 4]}}),
    "kernel-null-choice": _staged(stage={"kernel": {"choices": [3, None]}}),
    "kernel-dict-choice": _staged(stage={"kernel": {"choices": [3, {"a": 1}]}}),
    "kernel-range-even": _staged(stage={"kernel": {"min": 3, "max": 7}}),
    "depth-neg": _staged(stage={"depth": {"min": -5, "max": 2, "default": 1}}),
    "width-1e9": _staged(stage={"width": {"choices": [64, 10**9]}}),
    "width-float-range": _staged(stage={"width": {"min": 32.0, "max": 64.0}}),
    "width-nan": _staged(stage={"width": {"min": 32, "max": float("nan")}}),
    "width-inf": _staged(stage={"width": {"min": 32, "max": float("inf")}}),
    "min-over-max": _staged(stage={"width": {"min": 64, "max": 32}}),
    "step-0": _staged(stage={"width": {"min": 32, "max": 64, "step": 0}}),
    "choices-empty": _staged(stage={"kernel": {"choices": []}}),
    "default-outside": _staged(stage={"kernel": {"choices": [3, 5], "default": 7}}),
    "param-unknown-key": _staged(stage={"kernel": {"choices": [3], "weight": 1}}),
    "stride-choice-3": _staged(stage={"stride": {"choices": [1, 3]}}),
    "activation-choice": _staged(stage={"activation": {"choices": ["relu", "tanh"]}}),
    "block-choice": _staged(stage={"block": {"choices": ["basic", "attention"]}}),
    "stem-kernel-0": _staged({"stem": {"width": 64, "kernel": 0}}),
    "resolution-choice": _staged({"resolution": {"choices": [224, 2]}}),
    "reference-unknown": _staged(stage={"width": "$nowhere"}),
    "unused-parameter": _staged({"depth": {"min": 1, "max": 4}}),
    "stages-empty": _staged({"stages": []}),
    "regnet-bottleneck-0": _regnet({"bottleneck": {"choices": [0.0, 1.0], "default": 1.0}}),
    "regnet-group-w-0": _regnet({"group_w": {"choices": [0, 8], "default": 8}}),
    "regnet-quantum-0": _regnet(quantum=0),
    "regnet-depth-1e8": _regnet({"depth": {"min": 12, "max": 10**8, "default": 13}}),
    "regnet-wm-1": _regnet({"wm": {"min": 1.0, "max": 3.0, "default": 2.0}}),
    "regnet-wa-huge": _regnet({"wa": {"min": 8.0, "max": 1e9, "default": 36.0}}),
    "regnet-w0-odd": _regnet({"w0": {"choices": [24, 12], "default": 24}}),
    "regnet-missing": _yaml({k: v for k, v in _REGNET.items() if k != "parameters"}),
    "regnet-num-stages": _regnet(num_stages=0),
    "name-list": _staged({"name": ["resnet", "basic"]}),
    "description-map": _staged({"description": {"a": 1}}),
}


def _space_cases() -> list[Case]:
    cases = []
    for name, content in BAD_SPACES.items():
        file = f"sp-{name}.yaml"
        cases.append(Case(f"spaces-show-{name}", ["spaces", "show", file], file,
                          {file: content}))
        cases.append(Case(f"cost-space-{name}", ["cost", "--space", file], file,
                          {file: content}))
    for name in ("kernel-even-choice", "depth-neg", "regnet-bottleneck-0", "alias-bomb"):
        file = f"sp-{name}.yaml"
        cases.append(Case(f"design-space-{name}", ["design", "--space", file, "--flops", "1G"],
                          file, {file: BAD_SPACES[name]}))
        cases.append(Case(f"search-space-{name}", ["search", "--space", file, "--hardware",
                                                   "x86-avx2", "--trials", "2", "--run-dir",
                                                   "r"], file, {file: BAD_SPACES[name]}))
    return cases


# -- hardware profiles -----------------------------------------------------------------------

_PROFILE = yaml.safe_load((ROOT / "hardware_profiles" / "x86-avx2.yaml").read_text())


def _profile(change: dict[str, Any] | None = None, drop: str | None = None,
             **sections: dict[str, Any]) -> str:
    data = copy.deepcopy(_PROFILE)
    data.update(change or {})
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    if drop:
        del data[drop]
    return _yaml(data)


_FITTED = {"kind": "fitted", "measurements": "m.csv"}
BAD_PROFILES: dict[str, Any] = {
    "latin1": b"name: x86\ndevice: caf\xe9\n",
    "alias-bomb": _BOMB + "derived: {a: *h}\n" + _profile(drop="derived"),
    "derived-list": _profile(derived={"x": [1, 2]}),
    "unknown-key": _profile({"colour": "red"}),
    "missing-kind": _profile(drop="kind"),
    "kind-tpu": _profile({"kind": "tpu"}),
    "precision": _profile({"precision": "float64"}),
    "peak-neg": _profile(peak_flops={"default": {"float32": -1.0}}),
    "peak-inf": _profile(peak_flops={"default": {"float32": float("inf")}}),
    "peak-nan": _profile(peak_flops={"default": {"float32": float("nan")}}),
    "peak-text": _profile(peak_flops={"default": {"float32": "fast"}}),
    "peak-dtype": _profile(peak_flops={"default": {"float64": 1e9, "float32": 1e9}}),
    "peak-class": _profile(peak_flops={"attention": {"float32": 1e9}}),
    "bandwidth-0": _profile({"memory_bandwidth": 0}),
    "bandwidth-inf": _profile({"memory_bandwidth": float("inf")}),
    "overhead-neg": _profile({"kernel_overhead_us": -5.0}),
    "efficiency-2": _profile(efficiency={"default": {"compute": 2.0, "memory": 0.5}}),
    "efficiency-missing": _profile(efficiency={"default": {"compute": 0.5}}),
    "efficiency-key": _profile(efficiency={"default": {"compute": 0.5, "memory": 0.5,
                                                       "cache": 1}}),
    "fusion-text": _profile(fusion={"conv_norm_act": "yes"}),
    "fusion-unknown": _profile(fusion={"everything": True}),
    "model-kind": _profile({"model": {"kind": "oracle"}}),
    "model-no-data": _profile({"model": {"kind": "table"}}),
    "model-key": _profile({"model": {"kind": "roofline", "weights": "w.pkl"}}),
    "scale-neg": _profile({"model": {"kind": "roofline", "calibration": {"scale": -1.0}}}),
    "scale-0": _profile({"model": {"kind": "roofline", "calibration": {"scale": 0}}}),
    "scale-nan": _profile({"model": {"kind": "roofline",
                                     "calibration": {"scale": float("nan")}}}),
    "calibration-key": _profile({"model": {"kind": "roofline",
                                           "calibration": {"offset": 1.0}}}),
    "params-unknown": _profile({"model": {**_FITTED, "params": {"loss": "huber"}}}),
    "params-neg": _profile({"model": {**_FITTED, "params": {"max_iter": -1}}}),
    "params-huge": _profile({"model": {**_FITTED, "params": {"max_iter": 10**9}}}),
    "params-float-iter": _profile({"model": {**_FITTED, "params": {"max_iter": 2.5}}}),
    "name-number": _profile({"name": 7}),
    "not-mapping": "[1, 2]",
}

HEADER = ("op_class,c_in,h,w,c_out,h_out,w_out,k,stride,groups,fused_add,fused_ops,flops,"
          "bytes_in,bytes_out,params,batch,dtype,latency_ms,spread,split")


def _profile_cases() -> list[Case]:
    cases = []
    for name, content in BAD_PROFILES.items():
        file = f"hw-{name}.yaml"
        cases.append(Case(f"latency-profile-{name}", ["latency", "--arch", "resnet18",
                                                      "--hardware", file], file,
                          {file: content}))
        cases.append(Case(f"hardware-show-{name}", ["hardware", "show", file], file,
                          {file: content}))
    table_profile = _profile({"model": {"kind": "table", "measurements": "m.csv"}})
    for name, csv in {"header": "a,b\n1,2\n", "latin1": b"\xe9\n",
                      "latency-0": HEADER + "\n" + "0," * 16 + "1,float32,0,nan,train\n",
                      "latency-inf": HEADER + "\n" + "0," * 16 + "1,float32,inf,nan,train\n",
                      "split": HEADER + "\n" + "0," * 16 + "1,float32,1.0,nan,valid\n",
                      "text": HEADER + "\n" + "x," * 16 + "1,float32,1.0,nan,train\n"}.items():
        cases.append(Case(f"latency-measurements-{name}",
                          ["latency", "--arch", "resnet18", "--hardware", "hw.yaml"], "m.csv",
                          {"hw.yaml": table_profile, "m.csv": csv}))
    return cases


# -- table importers -------------------------------------------------------------------------

_OFA_GOOD = "expanded_conv-input:28x28x40-output:28x28x40-expand:240-kernel:3-stride:1-idskip:1"
BAD_TINYNAS = {
    "stride-0": "{Regular,1,16,56,56,32,3,0,0} 0.1",
    "c-in-0": "{Regular,1,0,56,56,32,3,1,0} 0.1",
    "batch-0": "{Regular,0,16,56,56,32,3,1,0} 0.1",
    "kernel-0": "{Regular,1,16,56,56,32,0,1,0} 0.1",
    "latency-inf": "{Regular,1,16,56,56,32,3,1,0} 1e999",
    "latency-0": "{Regular,1,16,56,56,32,3,1,0} 0",
    "latency-neg": "{Regular,1,16,56,56,32,3,1,0} -0.5",
    "depthwise-mismatch": "{Depthwise,1,16,56,56,24,3,1,0} 0.1",
    "garbage": "hello world",
    "only-unmeasured": "{Regular,1,16,56,56,32,3,1,0} -1",
    "latin1": b"\xe9\xe9",
}
BAD_OFA: dict[str, Any] = {
    "mean-0": {_OFA_GOOD: {"count": 1, "mean": 0}},
    "mean-neg": {_OFA_GOOD: {"count": 1, "mean": -1.0}},
    "mean-inf": {_OFA_GOOD: {"count": 1, "mean": float("inf")}},
    "mean-text": {_OFA_GOOD: {"count": 1, "mean": "fast"}},
    "mean-missing": {_OFA_GOOD: {"count": 1}},
    "std-nan": {_OFA_GOOD: {"mean": 1.0, "std": float("nan")}},
    "no-input": {"expanded_conv-output:28x28x40-expand:240-kernel:3-stride:1": {"mean": 1.0}},
    "no-output": {"Conv-input:224x224x3": {"mean": 1.0}},
    "expand-text": {_OFA_GOOD.replace("expand:240", "expand:lots"): {"mean": 1.0}},
    "kernel-text": {_OFA_GOOD.replace("kernel:3", "kernel:x"): {"mean": 1.0}},
    "kernel-even": {_OFA_GOOD.replace("kernel:3", "kernel:4"): {"mean": 1.0}},
    "stride-0": {_OFA_GOOD.replace("stride:1", "stride:0"): {"mean": 1.0}},
    "shape-bad": {_OFA_GOOD.replace("28x28x40", "28x28", 1): {"mean": 1.0}},
    "shape-0": {_OFA_GOOD.replace("28x28x40", "0x0x40", 1): {"mean": 1.0}},
    "field-no-colon": {_OFA_GOOD + "-broken": {"mean": 1.0}},
    "layer-unknown": {"Attention-input:7x7x320-output:7x7x320": {"mean": 1.0}},
    "not-mapping": [1, 2],
    "logits-text": {"Logits-input:1x1x1280-output:many": {"mean": 1.0}},
}


def _import_cases() -> list[Case]:
    cases = []
    for name, content in BAD_TINYNAS.items():
        file = f"t-{name}.out"
        cases.append(Case(f"import-tinynas-{name}", ["profile", "import", "--format",
                                                     "tinynas", file, "--out", "p.yaml"],
                          file, {file: content + "\n" if isinstance(content, str)
                                 else content}))
    for name, data in BAD_OFA.items():
        file = f"o-{name}.yaml"
        cases.append(Case(f"import-ofa-{name}", ["profile", "import", "--format", "ofa", file,
                                                 "--out", "p.yaml"], file,
                          {file: _yaml(data)}))
    good = "{Regular,1,16,56,56,32,3,1,0} 0.1\n"
    cases += [
        Case("import-out-missing-dir", ["profile", "import", "--format", "tinynas", "t.out",
                                        "--out", "nowhere/p.yaml"], "--out", {"t.out": good}),
        Case("import-out-suffix", ["profile", "import", "--format", "tinynas", "t.out",
                                   "--out", "p.json"], "--out", {"t.out": good}),
        Case("import-train-nan", ["profile", "import", "--format", "tinynas", "t.out",
                                  "--out", "p.yaml", "--train-fraction", "nan"],
             "--train-fraction", {"t.out": good}),
        Case("import-seed-neg", ["profile", "import", "--format", "tinynas", "t.out", "--out",
                                 "p.yaml", "--seed", "-1"], "--seed", {"t.out": good}),
        Case("import-base-unknown", ["profile", "import", "--format", "tinynas", "t.out",
                                     "--out", "p.yaml", "--base", "nope"], "nope",
             {"t.out": good}),
        Case("measure-out-missing-dir", ["profile", "measure", "--out", "nowhere/p.yaml"],
             "--out", {}),
        Case("measure-minutes-nan", ["profile", "measure", "--out", "p.yaml", "--minutes",
                                     "nan"], "--minutes", {}),
        Case("measure-mflops-inf", ["profile", "measure", "--out", "p.yaml", "--max-mflops",
                                    "inf"], "--max-mflops", {}),
        Case("measure-seed-neg", ["profile", "measure", "--out", "p.yaml", "--seed", "-1"],
             "--seed", {}),
        Case("validate-data-missing", ["profile", "validate", "x86-avx2", "--data", "no.csv"],
             "no.csv", {}),
    ]
    return cases


# -- command-line values -----------------------------------------------------------------------

_SEARCH = ["search", "--space", "resnet-basic", "--hardware", "x86-avx2", "--run-dir", "r"]


def _option_cases() -> list[Case]:
    c = Case
    return [
        c("search-seed-neg", [*_SEARCH, "--seed", "-1"], "--seed", {}),
        c("search-seed-huge", [*_SEARCH, "--seed", str(2**70)], "--seed", {}),
        c("search-dtype", [*_SEARCH, "--dtype", "float64"], "--dtype", {}),
        c("search-trials-0", [*_SEARCH, "--trials", "0"], "--trials", {}),
        c("search-workers-0", [*_SEARCH, "--workers", "0"], "--workers", {}),
        c("search-population-1", [*_SEARCH, "--population", "1"], "--population", {}),
        c("search-batch-0", [*_SEARCH, "--batch", "0"], "--batch", {}),
        c("search-latency-text", [*_SEARCH, "--latency", "fast"], "--latency", {}),
        c("search-latency-neg", [*_SEARCH, "--latency", "-2ms"], "--latency", {}),
        c("search-latency-nan", [*_SEARCH, "--latency", "nan"], "--latency", {}),
        c("search-flops-unit", [*_SEARCH, "--flops", "3 parsecs"], "--flops", {}),
        c("search-objectives", [*_SEARCH, "--objectives", "beauty"], "beauty", {}),
        c("search-objectives-twice", [*_SEARCH, "--objectives", "flops,flops"],
          "--objectives", {}),
        c("search-strategy", [*_SEARCH, "--strategy", "random-walk"], "--strategy", {}),
        c("search-score", [*_SEARCH, "--score", "vibes"], "vibes", {}),
        c("search-space-unknown", ["search", "--space", "nope", "--hardware", "x86-avx2"],
          "nope", {}),
        c("search-hardware-unknown", ["search", "--space", "resnet-basic", "--hardware",
                                      "toaster"], "toaster", {}),
        c("search-no-space", ["search", "--hardware", "x86-avx2"], "--space", {}),
        c("search-resume-no-dir", ["search", "--resume"], "--run-dir", {}),
        c("search-resume-not-run", ["search", "--resume", "--run-dir", "empty"], "empty",
          {"empty/x": ""}),
        c("search-storage-bad", [*_SEARCH, "--storage", "nosuchdb://x"], "--storage", {}),
        c("search-impossible", [*_SEARCH, "--flops", "1"], "flops", {}),
        c("cost-batch-0", ["cost", "--arch", "resnet18", "--batch", "0"], "--batch", {}),
        c("cost-dtype", ["cost", "--arch", "resnet18", "--dtype", "float64"], "--dtype", {}),
        c("cost-resolution-neg", ["cost", "--arch", "resnet18", "--resolution", "-3"],
          "resolution", {}),
        c("cost-arch-unknown", ["cost", "--arch", "resnet9000"], "resnet9000", {}),
        c("cost-arch-at", ["cost", "--arch", "resnet18@big"], "resnet18@big", {}),
        c("cost-two-sources", ["cost", "--arch", "resnet18", "--space", "regnet"], "exactly",
          {}),
        c("cost-set-no-space", ["cost", "--arch", "resnet18", "--set", "a=1"], "--set", {}),
        c("cost-set-bad", ["cost", "--space", "regnet", "--set", "depth"], "--set", {}),
        c("cost-set-unknown", ["cost", "--space", "regnet", "--set", "colour=red"], "colour",
          {}),
        c("cost-set-range", ["cost", "--space", "regnet", "--set", "depth=1000"], "depth", {}),
        c("cost-set-text", ["cost", "--space", "regnet", "--set", "wa=lots"], "wa", {}),
        c("latency-dtype", ["latency", "--arch", "resnet18", "--hardware", "x86-avx2",
                            "--dtype", "float64"], "--dtype", {}),
        c("latency-dtype-missing", ["latency", "--arch", "resnet18", "--hardware", "x86-avx2",
                                    "--dtype", "float16"], "float16", {}),
        c("latency-threads-0", ["latency", "--arch", "resnet18", "--hardware", "x86-avx2",
                                "--threads", "0"], "--threads", {}),
        c("latency-measure-huge-batch", ["latency", "--arch", "resnet18", "--hardware",
                                         "x86-avx2", "--measure", "--batch", "100000"],
          "--batch", {}),
        c("latency-no-hardware", ["latency", "--arch", "resnet18"], "--hardware", {}),
        c("design-time-limit-0", ["design", "--space", "resnet-basic", "--flops", "1G",
                                  "--time-limit", "0"], "--time-limit", {}),
        c("design-tolerance-nan", ["design", "--space", "resnet-basic", "--flops", "1G",
                                   "--tolerance", "nan"], "--tolerance", {}),
        c("design-tolerance-neg", ["design", "--space", "resnet-basic", "--flops", "1G",
                                   "--tolerance", "-1"], "--tolerance", {}),
        c("design-rho-inf", ["design", "--space", "resnet-basic", "--rho", "inf"], "--rho",
          {}),
        c("design-flops-inf", ["design", "--space", "resnet-basic", "--flops", "inf"],
          "--flops", {}),
        c("design-flops-text", ["design", "--space", "resnet-basic", "--flops", "many"],
          "--flops", {}),
        c("design-no-budget", ["design", "--space", "resnet-basic"], "budget", {}),
        c("design-out-missing-dir", ["design", "--space", "resnet-basic", "--flops", "1G",
                                     "--out", "nowhere/d.json"], "--out", {}),
        c("design-out-suffix", ["design", "--space", "resnet-basic", "--flops", "1G", "--out",
                                "d.onnx"], "--out", {}),
        c("design-latency-no-hardware", ["design", "--space", "resnet-basic", "--latency",
                                         "2ms"], "hardware", {}),
        c("build-nothing", ["build", "--arch", "resnet18"], "--onnx", {}),
        c("build-onnx-missing-dir", ["build", "--arch", "resnet18", "--onnx", "no/x.onnx"],
          "--onnx", {}),
        c("build-onnx-suffix", ["build", "--arch", "resnet18", "--onnx", "x.json"], "--onnx",
          {}),
        c("build-ts-suffix", ["build", "--arch", "resnet18", "--torchscript", "x.onnx"],
          "--torchscript", {}),
        c("build-onnx-wide", ["build", "wide.yaml", "--onnx", "w.onnx"], "w.onnx",
          {"wide.yaml": _yaml({"stages": [{"block": "basic", "width": 16384, "depth": 4,
                                           "stride": 2}]})}),
        c("build-onnx-directory", ["build", "--arch", "resnet18", "--onnx", "adir"], "adir",
          {"adir/x": ""}),
        c("score-objective", ["score", "--arch", "resnet18", "--objective", "vibes"], "vibes",
          {}),
        c("spaces-show-unknown", ["spaces", "show", "nope"], "nope", {}),
        c("hardware-show-unknown", ["hardware", "show", "toaster"], "toaster", {}),
    ]


# -- run directories -------------------------------------------------------------------------

def _run_cases() -> list[Case]:
    c = Case
    export = ["export", "{run}", "--trial", "0", "--format"]
    return [
        c("pareto-not-a-run", ["pareto", "nowhere"], "nowhere", {}),
        c("pareto-empty-dir", ["pareto", "empty"], "empty", {"empty/x": ""}),
        c("pareto-plot-suffix", ["pareto", "{run}", "--plot", "front.pdf"], "--plot", {}),
        c("pareto-plot-missing-dir", ["pareto", "{run}", "--plot", "no/front.png"], "--plot",
          {}),
        c("pareto-plot-onto-run", ["pareto", "{run}", "--plot", "{run}/pareto.png"], "--plot",
          {}),
        c("export-onto-journal", [*export, "json", "--out", "{run}/journal.log"], "--out",
          {}),
        c("export-onto-config", [*export, "yaml", "--out", "{run}/config.yaml"], "--out", {}),
        c("export-onto-pareto", [*export, "json", "--out", "{run}/pareto.json"], "--out", {}),
        c("export-onnx-as-json", [*export, "onnx", "--out", "x.json"], "--out", {}),
        c("export-json-as-onnx", [*export, "json", "--out", "x.onnx"], "--out", {}),
        c("export-out-missing-dir", [*export, "json", "--out", "no/x.json"], "--out", {}),
        c("export-trial-missing", ["export", "{run}", "--trial", "999", "--format", "json",
                                   "--out", "x.json"], "--trial", {}),
        c("export-trial-and-best", ["export", "{run}", "--trial", "0", "--best-under",
                                    "latency=2ms", "--format", "json", "--out", "x.json"],
          "--trial", {}),
        c("export-best-under-bad", ["export", "{run}", "--best-under", "speed", "--format",
                                    "json", "--out", "x.json"], "--best-under", {}),
        c("export-best-under-impossible", ["export", "{run}", "--best-under", "flops=1",
                                           "--format", "json", "--out", "x.json"],
          "--best-under", {}),
        c("export-format", ["export", "{run}", "--trial", "0", "--format", "pickle", "--out",
                            "x.pkl"], "--format", {}),
        c("export-not-a-run", ["export", "nowhere", "--trial", "0", "--format", "json",
                               "--out", "x.json"], "nowhere", {}),
        c("search-resume-changed", ["search", "--run-dir", "{run}", "--resume", "--seed", "7"],
          "seed", {}),
        c("search-resume-fewer-trials", ["search", "--run-dir", "{run}", "--resume",
                                         "--trials", "1"], "--trials", {}),
        c("search-over-existing", ["search", "--space", "resnet-basic", "--hardware",
                                   "x86-avx2", "--run-dir", "{run}"], "--resume", {}),
    ]


CASES: list[Case] = [*_spec_cases(), *_space_cases(), *_profile_cases(), *_import_cases(),
                     *_option_cases(), *_run_cases()]

