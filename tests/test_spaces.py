from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from archdesign.cost import cost
from archdesign.spaces import (
    SpaceError,
    adjust_block_compatibility,
    generate_regnet,
    get_space,
    list_spaces,
    load_space,
)
from archdesign.spec import ArchSpec

SPACES = ["convnext", "mobilenet", "regnet", "resnet-basic", "resnet-bottleneck"]


def test_registry_lists_the_built_in_spaces() -> None:
    assert list_spaces() == SPACES
    with pytest.raises(SpaceError, match=r"unknown search space 'nope'; known spaces: "
                                         r"\['convnext'"):
        get_space("nope")


@pytest.mark.parametrize("name", SPACES)
def test_seeded_sampling_is_reproducible_and_valid(name: str) -> None:
    space = get_space(name)
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = space.sample(rng)
        assert space.resolve(params) == params  # every sample passes the range checks
        spec = space.decode(params)
        assert isinstance(spec, ArchSpec) and cost(spec).flops > 0


def test_sizes() -> None:
    # resnet-basic: stem 9 widths, then per stage widths x depths x 2 kernels.
    expected = 9 * (29 * 8 * 2) * (59 * 8 * 2) * (117 * 12 * 2) * (241 * 8 * 2)
    assert get_space("resnet-basic").size == expected
    assert math.isinf(get_space("regnet").size)  # wa and wm are continuous


def test_staged_parameters_and_defaults() -> None:
    space = get_space("mobilenet")
    names = [p.name for p in space.parameters]
    assert "s3.kernel" in names and "se_ratio" in names and "resolution" in names
    assert "s1.depth" not in names  # fixed at 1
    spec = space.spec({"s3.kernel": "7", "resolution": "160", "se_ratio": "0.250"})
    assert spec.stages[2].kernel == 7 and spec.resolution == 160
    assert all(s.se_ratio == 0.25 for s in spec.stages)
    assert space.spec() == space.decode(space.defaults())


def test_convnext_stem_follows_the_first_stage_width() -> None:
    spec = get_space("convnext").spec({"s1.width": 64})
    assert spec.stem.width == 64 == spec.stages[0].width


@pytest.mark.parametrize(("overrides", "message"), [
    ({"s9.width": 8}, r"has no parameter 's9.width'; parameters: \["),
    ({"s1.width": 36}, r"'s1.width': 36 is not on the grid"),
    ({"s1.width": 4000}, r"'s1.width': 4000 is outside \[32, 256\]"),
    ({"s1.kernel": 4}, r"'s1.kernel': 4 is not one of \[3, 5\]"),
    ({"s1.depth": "two"}, r"'s1.depth': expected a number"),
])
def test_bad_overrides_name_the_file_and_key(overrides: dict[str, object],
                                             message: str) -> None:
    with pytest.raises(SpaceError, match=message) as info:
        get_space("resnet-basic").resolve(overrides)
    assert "search_spaces/resnet-basic.yaml" in str(info.value)


def test_generate_regnet_matches_the_paper() -> None:
    # RegNetX-200MF: 4 stages of widths 24, 56, 152, 368 and depths 1, 1, 4, 7.
    assert generate_regnet(36.44, 24, 2.49, 13) == ([24, 56, 152, 368], [1, 1, 4, 7])
    # group width 24 does not divide 56: pycls rounds widths to a multiple of it
    assert adjust_block_compatibility([56, 152], 1.0, 24) == ([48, 144], [24, 24])
    with pytest.raises(ValueError, match="invalid RegNet parameters"):
        generate_regnet(10, 20, 2.0, 10)  # w0 not a multiple of 8


def test_regnet_sampling_keeps_four_stages() -> None:
    space = get_space("regnet")
    rng = np.random.default_rng(1)
    assert all(len(space.sample_spec(rng).stages) == 4 for _ in range(20))


@pytest.mark.parametrize(("text", "message"), [
    ("family: staged\nstages: [{block: basic, width: 8, depth: 1, colour: red}]",
     r"stages\[0\]: unknown key 'colour'"),
    ("family: lattice\n", r"family: 'lattice' is not one of \['regnet', 'staged'\]"),
    ("family: staged\nstages: [{block: basic, width: {min: 64, max: 8}, depth: 1}]",
     r"s1.width: min 64 is larger than max 8"),
    ("family: staged\nstages: [{block: basic, width: {choices: []}, depth: 1}]",
     r"s1.width.choices: expected a non-empty list"),
    ("family: staged\nstem: {width: $s2.width}\nstages: [{block: basic, width: 8, depth: 1}]",
     r"reference \$s2.width names no parameter"),
    ("family: staged\nstages: [{block: basic, width: 8, depth: 1, stride: 3}]",
     r"invalid architecture: stages\[0\].stride"),
    ("family: regnet\nparameters: {depth: 13}\n", r"parameters.w0 is required"),
    ("family: staged\nschema_version: 2\n", r"schema_version 2 is not supported"),
    ("[1, 2", r"not valid YAML"),
])
def test_bad_space_files_are_rejected_with_file_and_key(tmp_path: Path, text: str,
                                                        message: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError, match=message) as info:
        load_space(path)
    assert str(path) in str(info.value)
    with pytest.raises(SpaceError):
        get_space(str(path))
