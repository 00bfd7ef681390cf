"""A network as plain, readable PyTorch source: one module file that imports torch only.

The file is written from the one layer expansion (:func:`archdesign.layers.blocks`), as
:func:`archdesign.build.build` builds it: a class per distinct block (identical blocks
share one), each holding its layers' modules as attributes and a ``forward`` that names
what flows between them; a ``Network`` of ``stem``, ``stages`` and ``head``. Each
module's constructor is written from the module archdesign itself builds for the layer
(its ``repr``), and the custom modules (LayerNorm2d, ...) and the weight initialization
are copied from their definitions, so nothing is described twice.

Same parameters, same outputs: the modules are created and initialized in the order
:func:`~archdesign.build.build` creates them, so under the same ``torch.manual_seed`` both
hold the same weights; and the state-dict keys are ``build``'s without its ``.ops.``
level (:func:`source_state_dict`). :func:`export_python` checks every file it writes:
it runs it next to ``build(spec)`` with the same weights and compares parameter counts
and outputs.
"""

from __future__ import annotations

import inspect
import keyword
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archdesign.cost import cost
from archdesign.files import atomic_write_text
from archdesign.layers import Block, blocks, stage_name
from archdesign.ops import Layer
from archdesign.spec import ArchSpec

#: Ops written as an expression in ``forward`` rather than as a module.
_INLINE = {"add": "{} + {}", "mul": "{} * {}"}
#: The variable a value is held in, by the role of the layer that computes it.
_ROLE_VARIABLES = {"main": "out", "shortcut": "shortcut", "se": "se", "head": "out"}


@dataclass(frozen=True)
class PythonCheck:
    params: int
    max_abs_diff: float


def _constructor(module: Any) -> str:
    """Source text that builds a module equal to ``module`` (a leaf module)."""
    from archdesign import modules

    cls = type(module)
    if cls is modules.LayerScale:
        return f"LayerScale({module.gamma.shape[0]})"
    if cls is modules.ChannelShuffle:
        return f"ChannelShuffle({module.groups})"
    text = _without_defaults(cls, repr(module))
    return text if cls.__module__ == modules.__name__ else f"nn.{text}"


def _split_arguments(text: str) -> list[str]:
    """``"3, kernel_size=(3, 3), bias=False"`` -> its top-level arguments."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()] if text.strip() else parts


def _without_defaults(cls: type, text: str) -> str:
    """A module's ``repr`` as a short constructor call: square ``(3, 3)`` sizes as ``3``,
    keyword arguments at their default left out (the export check runs the result)."""
    name, _, rest = text.partition("(")
    defaults = {k: repr(p.default) for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
    kept = []
    for argument in _split_arguments(re.sub(r"\((\d+), \1\)", r"\1", rest[:-1])):
        key, eq, value = argument.partition("=")
        if not (eq and defaults.get(key) == value):
            kept.append(argument)
    return f"{name}({', '.join(kept)})"


def _custom_classes(used: set[type]) -> list[str]:
    from archdesign import modules

    return [inspect.getsource(cls) for name, cls in vars(modules).items()
            if isinstance(cls, type) and cls.__module__ == modules.__name__ and cls in used]


def _forward(layers: tuple[Layer, ...]) -> list[str]:
    """The body of a block's ``forward``: one line per layer, values named by role."""
    if not layers:
        return ["return x"]
    last_use = {-1: -1}
    for j, layer in enumerate(layers):
        for k in layer.inputs:
            last_use[k] = j
    last_use[len(layers) - 1] = len(layers)  # returned
    held: dict[int, str] = {-1: "x"}
    lines = []
    for i, layer in enumerate(layers):
        args = [held[k] for k in layer.inputs]
        first = layer.inputs[0]
        if held[first] != "x" and last_use.get(first, -1) == i:
            name = held[first]  # the input dies here: its variable takes the output
        else:
            live = {v for k, v in held.items() if last_use.get(k, -1) >= i}
            base = _ROLE_VARIABLES[layer.role]
            name = next(n for n in (base, *(f"{base}{d}" for d in range(2, 99)))
                        if n not in live)
        expression = (_INLINE[layer.op].format(*args) if layer.op in _INLINE
                      else f"self.{layer.name}({', '.join(args)})")
        lines.append(f"{name} = {expression}")
        held[i] = name
    return [*lines, f"return {held[len(layers) - 1]}"]


def _class_body(layers: tuple[Layer, ...], used: set[type]) -> tuple[list[str], list[str]]:
    from archdesign.build import layer_module

    init = []
    for layer in layers:
        if layer.op in _INLINE:
            continue
        if not layer.name.isidentifier() or keyword.iskeyword(layer.name):
            raise RuntimeError(f"layer name {layer.name!r} is not a Python identifier")
        module = layer_module(layer)
        used.add(type(module))
        init.append(f"self.{layer.name} = {_constructor(module)}")
    return init, _forward(layers)


def _camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("_"))


def _where(names: list[str]) -> str:
    """``s2.b1-b3, s3.b0``: block names with consecutive runs of a stage joined."""
    runs: list[list[str]] = []
    for name in names:
        stage, _, index = name.partition(".b")
        if runs and runs[-1][0] == stage and int(runs[-1][-1]) + 1 == int(index):
            runs[-1].append(index)
        else:
            runs.append([stage, index])
    return ", ".join(f"{r[0]}.b{r[1]}" + (f"-b{r[-1]}" if len(r) > 2 else "") for r in runs)


def _indent(lines: list[str], level: int) -> list[str]:
    return [("    " * level + line) if line else "" for line in lines]


def _class_source(name: str, doc: str, init: list[str], forward: list[str]) -> list[str]:
    lines = [f"class {name}(nn.Module):", f'    """{doc}"""', ""]
    if init:
        lines += _indent(["def __init__(self) -> None:", "    super().__init__()",
                          *("    " + line for line in init), ""], 1)
    lines += _indent(["def forward(self, x: torch.Tensor) -> torch.Tensor:",
                      *("    " + line for line in forward)], 1)
    return lines


def python_source(spec: ArchSpec, about: str = "") -> str:
    """The module file of ``spec``'s network (``about``: a line on where it came from)."""
    from archdesign import __version__
    from archdesign.build import _initialize

    placed = blocks(spec)
    used: set[type] = set()
    classes: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}  # body -> class name
    where: dict[str, list[str]] = {}
    docs: dict[str, str] = {}
    instance: dict[str, str] = {}  # block name -> class name
    counters: dict[str, int] = {}
    for block in placed:
        init, forward = _class_body(block.layers, used)
        key = (tuple(init), tuple(forward))
        if key not in classes:
            kind = _block_kind(block, len(spec.stages))
            counters[kind] = counters.get(kind, 0) + 1
            name = kind if kind in ("Stem", "Head") else f"{kind}{counters[kind]}"
            classes[key] = name
            docs[name] = _describe(block, len(spec.stages))
        instance[block.name] = classes[key]
        where.setdefault(classes[key], []).append(block.name)
    c = cost(spec)
    lines = ['"""' + (spec.name or "network") + f": plain PyTorch, generated by archdesign "
             f"{__version__}" + (f" ({about})" if about else "") + ".",
             "",
             f"Input {spec.in_channels}x{spec.resolution}x{spec.resolution}, "
             f"{spec.head.num_classes} classes; {c.params:,} parameters, {c.flops:,} "
             f"multiply-accumulates.",
             "Needs only PyTorch: ``model = Network()``. Weights of archdesign's build(spec) "
             "load with",
             "their state-dict keys without '.ops.'.",
             '"""', "", "from collections import OrderedDict", "",
             "import torch", "from torch import nn"]
    if any(re.search(r"\bF\.", inspect.getsource(cls)) for cls in used if _is_custom(cls)):
        lines.append("from torch.nn import functional as F")
    lines += ["", f"IN_CHANNELS = {spec.in_channels}", f"RESOLUTION = {spec.resolution}",
              f"NUM_CLASSES = {spec.head.num_classes}", ""]
    for source in _custom_classes(used):
        lines += ["", *source.rstrip().splitlines(), ""]
    for (class_init, class_forward), name in classes.items():
        doc = docs[name] if name in ("Stem", "Head") else \
            f"{docs[name]} ({_where(where[name])})"
        lines += ["", *_class_source(name, doc, list(class_init), list(class_forward)), ""]
    stage_lines = []
    for s in range(len(spec.stages)):
        members = [instance[b.name] for b in placed if b.stage == s]
        stage_lines.append(f'"{stage_name(s)}": _stage({", ".join(_calls(members))}),')
    lines += ["", "def _stage(*blocks: nn.Module) -> nn.Sequential:",
              '    """A stage: its blocks in order, named b0, b1, ..."""',
              '    return nn.Sequential(OrderedDict((f"b{i}", b) for i, b in '
              'enumerate(blocks)))', "", "",
              *inspect.getsource(_initialize).rstrip().splitlines(), "", "",
              *_class_source("Network", f"{spec.name or 'The network'}: stem, stages, head.",
                             ["self.stem = Stem()", "self.stages = nn.ModuleDict({",
                              *("    " + line for line in stage_lines), "})",
                              "self.head = Head()", "_initialize(self)"],
                             ["x = self.stem(x)", "for stage in self.stages.values():",
                              "    x = stage(x)", "return self.head(x)"]),
              "", "",
              'if __name__ == "__main__":',
              "    model = Network().eval()",
              "    x = torch.randn(1, IN_CHANNELS, RESOLUTION, RESOLUTION)",
              "    with torch.inference_mode():",
              "        logits = model(x)",
              '    print(f"{sum(p.numel() for p in model.parameters()):,} parameters, '
              'output {tuple(logits.shape)}")', ""]
    return "\n".join(lines)


def _calls(names: list[str]) -> list[str]:
    """``["A", "B", "B", "B"]`` -> ``["A()", "*(B() for _ in range(3))"]`` (made in order)."""
    out: list[str] = []
    i = 0
    while i < len(names):
        j = i
        while j < len(names) and names[j] == names[i]:
            j += 1
        out += [f"*({names[i]}() for _ in range({j - i}))"] if j - i > 2 else \
            [f"{names[i]}()"] * (j - i)
        i = j
    return out


def _is_custom(cls: type) -> bool:
    from archdesign import modules

    return cls.__module__ == modules.__name__


def _block_kind(block: Block, n_stages: int) -> str:
    if block.stage < 0:
        return "Stem"
    if block.stage == n_stages:
        return "Head"
    return _camel(block.args[0])


def _describe(block: Block, n_stages: int) -> str:
    if block.stage < 0:
        return "The stem."
    if block.stage == n_stages:
        return "The head: pooling and the classifier."
    kind, c_in, c_out, stride = block.args[:4]
    article = "An" if kind[0] in "aeiou" else "A"
    return f"{article} {kind} block, {c_in} -> {c_out} channels, stride {stride}"


def load_source(source: str, name: str = "exported_network") -> types.ModuleType:
    """The module ``source`` defines, executed in a fresh namespace."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def source_state_dict(build_state: Mapping[str, Any]) -> dict[str, Any]:
    """``build(spec).state_dict()`` with the keys of the exported source's ``Network``."""
    return {re.sub(r"\.ops\.", ".", key): value for key, value in build_state.items()}


def check_source(spec: ArchSpec, source: str, seed: int = 0,
                 tolerance: float = 1e-5) -> PythonCheck:
    """Run ``source``'s network next to ``build(spec)`` with the same weights on one random
    input; a RuntimeError if parameter counts or outputs differ."""
    import torch

    from archdesign.build import build

    reference = build(spec).eval()
    exported = load_source(source).Network().eval()
    exported.load_state_dict(source_state_dict(reference.state_dict()), strict=True)
    params = sum(p.numel() for p in exported.parameters())
    want_params = sum(p.numel() for p in reference.parameters())
    if params != want_params:
        raise RuntimeError(f"exported source has {params} parameters, build(spec) "
                           f"{want_params}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, spec.in_channels, spec.resolution, spec.resolution,
                    generator=generator)
    with torch.inference_mode():
        got, want = exported(x), reference(x)
    diff = float((got - want).abs().max())
    scale = float(want.abs().max())
    if got.shape != want.shape or diff > tolerance * max(scale, 1e-30):
        raise RuntimeError(f"exported source's output differs from build(spec): max |diff| "
                           f"{diff:.3g} against max |output| {scale:.3g}")
    return PythonCheck(params, diff)


def export_python(spec: ArchSpec, path: str | Path, about: str = "",
                  check: bool = True) -> PythonCheck | None:
    """Write ``spec``'s network as a PyTorch module file (checked unless ``check`` is off)."""
    from archdesign.build import check_fits

    source = python_source(spec, about)
    result = None
    if check:
        check_fits(spec, 2, str(path))
        result = check_source(spec, source)
    atomic_write_text(path, source)
    return result
