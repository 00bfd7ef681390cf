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

SPACES = ["convnext", "deepmad-mbconv", "fbnet", "fbnet-cifar100", "mobilenet",
          "nas-bench-macro", "ofa-mbv3", "regnet", "resnet-basic", "resnet-bottleneck",
          "resnet-bottleneck-ratio"]


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
     r"stages\[0\].stride"),
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


# -- the community's benchmark spaces: golden figures from their own model code -----------

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OFA_MAX = {**{f"d{i}": 4 for i in range(1, 6)}, **{f"ks{b}": 7 for b in range(20)},
           **{f"e{b}": 6 for b in range(20)}, "resolution": 224}
OFA_MIN = {**{f"d{i}": 2 for i in range(1, 6)}, **{f"ks{b}": 3 for b in range(20)},
           **{f"e{b}": 3 for b in range(20)}, "resolution": 128}
FBNET_ROW0 = [
    "k5_e6", "skip", "k3_e1_g2", "skip", "k5_e1", "skip", "skip", "skip", "k5_e6", "k5_e1",
    "k3_e1_g2", "k5_e1", "k5_e6", "k3_e6", "k3_e3", "k5_e6", "k3_e6", "k3_e3", "k5_e1",
    "k3_e3", "k5_e1", "k5_e1_g2"]
NBM = ("id", "ir_3x3_t3", "ir_5x5_t6")


def _fbnet(ops: list[str]) -> dict[str, str]:
    return {f"op{i}": op for i, op in enumerate(ops)}


def _nbm(code: str) -> dict[str, str]:
    return {f"l{i}": NBM[int(c)] for i, c in enumerate(code)}


# (space, point, conv + linear MACs, params): OFA's code + fvcore; HW-NAS-Bench's FBNet
# model code + fvcore; NAS-Bench-Macro's published parameter counts (MACs: None).
GOLDEN = [
    ("ofa-mbv3", OFA_MAX, 566_170_656, 7_664_760),
    ("ofa-mbv3", OFA_MIN, 41_476_224, 3_410_792),
    ("fbnet-cifar100", _fbnet(FBNET_ROW0), 67_605_376, 1_790_500),
    ("fbnet", _fbnet(FBNET_ROW0), 272_388_736, 3_794_920),
    ("fbnet-cifar100", _fbnet(["k5_e6"] * 22), 160_926_080, 3_749_652),
    ("fbnet-cifar100", _fbnet(["skip"] * 22), 11_608_960, 780_660),
    ("nas-bench-macro", _nbm("02012100"), None, 890_666),
    ("nas-bench-macro", _nbm("11111221"), None, 2_181_386),
    ("nas-bench-macro", _nbm("00000000"), None, 387_882),
    ("nas-bench-macro", _nbm("22222222"), None, 2_932_586),
]


@pytest.mark.parametrize(("name", "point", "flops", "params"), GOLDEN)
def test_benchmark_spaces_match_golden_figures(name: str, point: dict[str, object],
                                               flops: int | None, params: int) -> None:
    c = cost(get_space(name).spec(point))
    assert c.params == params
    if flops is not None:
        assert c.flops == flops


def test_ofa_row_of_the_measured_data_matches_golden() -> None:
    import csv

    path = DATA / "latency" / "ofa_mbv3_gpu.csv"
    if not path.is_file():
        pytest.skip("shared data not present")
    with path.open() as f:
        row = next(csv.DictReader(f))
    space = get_space("ofa-mbv3")
    point = {p.name: row[p.name] for p in space.parameters}
    c = cost(space.spec(point))
    assert (c.flops, c.params) == (194_900_424, 4_457_920)  # arch_idx 0, resolution 204


def test_elastic_depth_uses_the_first_slots() -> None:
    space = get_space("ofa-mbv3")
    spec = space.spec({"d1": 2, "ks0": 3, "ks1": 5, "ks2": 3, "e2": 3})
    stage = spec.stages[1]
    assert stage.depth == 2 and [b.kernel for b in stage.blocks] == [3, 5]
    # slots beyond the depth are ignored: the same network
    assert space.spec({"d1": 2, "ks0": 3, "ks1": 5, "ks2": 7}) == spec


def test_free_bottleneck_widths_follow_deepmads_rule() -> None:
    space = get_space("resnet-bottleneck")
    rng = np.random.default_rng(3)
    for _ in range(10):
        params = space.sample(rng)
        for i in range(1, 6):
            ratio = params[f"s{i}.hidden_width"] / params[f"s{i}.width"]  # type: ignore[operator]
            assert 0.1 <= ratio <= 1.0
        spec = space.decode(params)
        assert spec.stages[0].inner_width == params["s1.hidden_width"]
    with pytest.raises(SpaceError, match=r"s1.hidden_width / s1.width <= 1"):
        space.spec({"s1.width": 64, "s1.hidden_width": 128})
    with pytest.raises(SpaceError, match=r"0.1 <= s2.hidden_width / s2.width"):
        space.spec({"s2.width": 1024, "s2.hidden_width": 64})


@pytest.mark.parametrize(("text", "message"), [
    ("ops: {a: {block: skip, colour: red}}", r"ops.a: unknown key 'colour'"),
    ("constraints: [{ratio: [s1.width, nope], min: 0.1}]", r"constraints\[0\].ratio: expected "
                                                           r"two parameter names"),
    ("constraints: [{ratio: [s1.width, s1.width], min: 2, max: 1}]", r"min <= max"),
    ("parameters: {k: 3}", r"parameters.k: expected a mapping"),
])
def test_bad_space_extensions_name_file_and_key(tmp_path: Path, text: str,
                                               message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("family: staged\nblock: basic\n"
                    "stages: [{width: {min: 8, max: 64, step: 8}, depth: 1}]\n" + text + "\n")
    with pytest.raises(SpaceError, match=message) as info:
        load_space(path)
    assert str(path) in str(info.value)


def test_an_op_outside_the_ops_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ops.yaml"
    path.write_text("family: staged\nblock: skip\nops: {a: {block: skip}}\n"
                    "parameters: {o: {choices: [a, b]}}\n"
                    "stages: [{width: 16, depth: 1, blocks: [{op: $o}]}]\n")
    with pytest.raises(SpaceError, match=r"op 'b' is not in the space's 'ops' table"):
        load_space(path)


def test_elastic_depth_counts_only_the_slots_a_depth_uses() -> None:
    # per stage: sum over depths 2..4 of (3 kernels x 3 expansions)^depth; 25 resolutions
    assert get_space("ofa-mbv3").size == (81 + 729 + 6561) ** 5 * 25
    assert get_space("fbnet").size == 9 ** 22  # fixed depths: every slot counts
    assert get_space("nas-bench-macro").size == 3 ** 8


@pytest.mark.parametrize("name", ["ofa-mbv3", "fbnet-cifar100", "nas-bench-macro",
                                  "deepmad-mbconv", "resnet-bottleneck"])
def test_sampled_points_of_the_new_spaces_match_fvcore(name: str) -> None:
    from fvcore_reference import fvcore_counts

    from archdesign.cost import pool_activations

    space = get_space(name)
    rng = np.random.default_rng(11)
    for _ in range(2):
        spec = space.sample_spec(rng)
        if spec.resolution > 64:  # every stage keeps > 1 pixel at 64: same structures
            spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": 64})
        ours, ref = cost(spec), fvcore_counts(spec)
        assert (ours.flops, ours.params) == (ref["flops"], ref["params"])
        assert ours.activations - pool_activations(spec) == ref["activations"]
