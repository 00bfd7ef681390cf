from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archdesign.spec import (
    SCHEMA_VERSION,
    ArchSpec,
    HeadSpec,
    SpecError,
    StageSpec,
    StemSpec,
    load_spec,
)
from archdesign.zoo import get_arch, list_archs


def _spec(**stage: object) -> ArchSpec:
    fields = {"block": "bottleneck", "width": 64, "depth": 2, **stage}
    return ArchSpec(stages=(StageSpec(**fields),))  # type: ignore[arg-type]


@pytest.mark.parametrize(("stage", "message"), [
    ({"width": 0}, r"stages\[0\].width: 0 is outside the allowed range \[1, 16384\]"),
    ({"depth": 2.5}, r"stages\[0\].depth: expected an integer"),
    ({"stride": 3}, r"stages\[0\].stride: 3 is not one of \[1, 2\]"),
    ({"kernel": 4}, r"stages\[0\].kernel: must be odd"),
    ({"block": "transformer"}, r"stages\[0\].block: 'transformer' is not one of"),
    ({"activation": "tanh"}, r"stages\[0\].activation: 'tanh' is not one of"),
    ({"group_width": 7}, r"group_width: 7 does not divide the bottleneck width 64"),
    ({"block": "basic", "expansion": 0.5}, r"basic blocks have no expansion"),
    ({"block": "convnext", "se_ratio": 0.25}, r"se_ratio: convnext blocks have no squeeze"),
    ({"block": "inverted_residual", "group_width": 4}, r"only bottleneck blocks"),
])
def test_invalid_stage_names_field_and_allowed_values(stage: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _spec(**stage)


def test_invalid_network_level_values() -> None:
    with pytest.raises(SpecError, match="resolution: 16 is smaller than the network's total "
                                        "stride 32"):
        ArchSpec(stages=tuple(StageSpec("basic", 8, 1, stride=2) for _ in range(4)),
                 resolution=16)
    with pytest.raises(SpecError, match="at least one stage"):
        ArchSpec(stages=())
    with pytest.raises(SpecError, match="cannot be mixed"):
        ArchSpec(stages=(StageSpec("convnext", 32, 1, kernel=7, expansion=4.0),
                         StageSpec("basic", 32, 1)))
    with pytest.raises(SpecError, match=r"stem\.kernel"):
        StemSpec(kernel=0)
    with pytest.raises(SpecError, match=r"head\.num_classes"):
        HeadSpec(num_classes=0)


def test_specs_are_frozen() -> None:
    spec = get_arch("resnet18")
    with pytest.raises(AttributeError):
        spec.resolution = 128  # type: ignore[misc]


@pytest.mark.parametrize("name", list_archs())
def test_zoo_round_trips_through_json_and_yaml(name: str) -> None:
    spec = get_arch(name)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    assert json.loads(spec.to_json())["schema_version"] == SCHEMA_VERSION


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 4096), depth=st.integers(1, 20),
       expansion=st.floats(0.01, 16.0, allow_nan=False), kernel=st.sampled_from([1, 3, 5, 7]),
       resolution=st.integers(32, 512))
def test_round_trip_is_lossless_for_any_valid_values(width: int, depth: int, expansion: float,
                                                      kernel: int, resolution: int) -> None:
    spec = ArchSpec(stages=(StageSpec("inverted_residual", width, depth, 2, kernel,
                                      expansion),), resolution=resolution)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    data = get_arch("resnet18").to_dict()
    with pytest.raises(SpecError, match=r"spec.stages\[1\]: unknown key 'widht'; allowed keys"):
        ArchSpec.from_dict({**data, "stages": [data["stages"][0],
                                               {**data["stages"][1], "widht": 3}]})
    with pytest.raises(SpecError, match="missing required key 'stages'"):
        ArchSpec.from_dict({"resolution": 224})
    with pytest.raises(SpecError, match="schema_version"):
        ArchSpec.from_dict({**data, "schema_version": 99})


def test_load_spec_names_the_file(tmp_path: Path) -> None:
    spec = get_arch("mobilenet_v2")
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"net{suffix}"
        spec.save(path)
        assert load_spec(path) == spec
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [{block: basic, width: 64, depth: 2, stride: 5}]\n")
    with pytest.raises(SpecError, match=rf"{bad}: stages\[0\].stride: 5 is not one of"):
        load_spec(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("stages: [\n")
    with pytest.raises(SpecError, match=rf"{broken}: not valid YAML"):
        load_spec(broken)
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.json")


def test_yaml_loading_is_safe(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(evil)
