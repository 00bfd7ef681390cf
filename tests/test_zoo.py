"""Every zoo network against its published figures; zoo names with a resolution (``NAME@RES``).

Sources, and how each counts:

- torchvision model docs: exact parameter counts, "GFLOPS" that are multiply-accumulates
  to 2 decimals (at the weights' crop size).
- pycls ``dev/model_complexity.json``: the exact figures its MODEL_ZOO.md tables are
  generated from. Its params and activations are ours exactly; its flops also count bias
  additions (one per output element of a conv or linear layer with a bias).
- TF-slim MobileNetV2 README: params in millions to 2 decimals, without batch-norm scale and
  shift, for a 1001-class classifier; MMACs truncated (not rounded) to an integer.
- tensorflow/tpu EfficientNet-lite README: params in millions to 1 decimal.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from archdesign import cost
from archdesign.cli import main
from archdesign.errors import InputError
from archdesign.layers import layers
from archdesign.spaces import get_space
from archdesign.spec import ArchSpec
from archdesign.zoo import ZOO_DIR, get_arch, list_archs

# name: (params, GMACs to 2 decimals). EfficientNet-B2's torchvision weights use 288px
# (pycls trains it at 260, the zoo's resolution), so it is checked as a NAME@RES.
TORCHVISION = {
    "mobilenet_v3_large": (5_483_032, 0.22),
    "mobilenet_v3_small": (2_542_856, 0.06),
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet50": (25_557_032, 4.09),
    "resnet101": (44_549_160, 7.80),
    "resnet152": (60_192_808, 11.51),
    "resnext50_32x4d": (25_028_904, 4.23),
    "mobilenet_v2": (3_504_872, 0.30),
    "mobilenet_v2_1.0": (3_504_872, 0.30),
    "efficientnet_b0": (5_288_548, 0.39),
    "efficientnet_b1": (7_794_184, 0.69),
    "efficientnet_b2@288": (9_109_994, 1.09),
    "efficientnet_b3": (12_233_232, 1.83),
    "efficientnet_b4": (19_341_616, 4.39),
    "efficientnet_b5": (30_389_784, 10.27),
    "convnext_tiny": (28_589_128, 4.46),
    "convnext_small": (50_223_688, 8.68),
    "regnety_400mf": (4_344_144, 0.40),
    "regnetx_800mf": (7_259_656, 0.80),
    "regnetx_1_6gf": (9_190_136, 1.60),
    "regnety_1_6gf": (11_202_430, 1.61),
}
# convnext_base: torchvision publishes 88,591,464 params (ours exactly) and 15.36 GMACs;
# ours are 15.3547, so see KNOWN_GAPS.
TORCHVISION_PARAMS_ONLY = {"convnext_base": 88_591_464}

# name: (flops with bias additions, params, activations), exactly.
PYCLS = {
    "regnetx_200mf": (199_040_872, 2_684_792, 2_164_056),
    "regnetx_400mf": (397_678_568, 5_157_512, 3_143_272),
    "regnetx_600mf": (600_891_112, 6_196_040, 3_975_096),
    "regnetx_800mf": (799_700_712, 7_259_656, 5_148_744),
    "regnetx_1_6gf": (1_602_850_792, 9_190_136, 7_933_512),
    "regnetx_3_2gf": (3_176_622_952, 15_296_552, 11_367_432),
    "regnetx_4_0gf": (3_964_499_816, 22_118_248, 12_201_608),
    "regnetx_6_4gf": (6_460_292_264, 26_209_256, 16_369_744),
    "regnetx_8_0gf": (7_995_133_416, 39_572_648, 14_059_688),
    "regnetx_12gf": (12_086_679_016, 46_106_056, 21_366_568),
    "regnetx_16gf": (15_940_756_456, 54_278_536, 25_515_496),
    "regnetx_32gf": (31_735_930_792, 107_811_560, 36_302_160),
    "regnety_200mf": (199_519_076, 3_162_996, 2_168_052),
    "regnety_400mf": (401_849_056, 4_344_144, 3_892_496),
    "regnety_600mf": (601_227_608, 6_055_160, 4_334_296),
    "regnety_800mf": (797_183_328, 6_263_168, 5_249_888),
    "regnety_1_6gf": (1_612_087_326, 11_202_430, 8_044_814),
    "regnety_3_2gf": (3_176_496_162, 19_436_338, 11_263_418),
    "regnety_4_0gf": (3_973_301_344, 20_646_656, 12_287_200),
    "regnety_6_4gf": (6_355_221_876, 30_583_252, 16_407_188),
    "regnety_8_0gf": (7_963_074_196, 39_180_068, 17_968_916),
    "regnety_12gf": (12_092_395_504, 51_822_544, 21_384_496),
    "regnety_16gf": (15_911_534_044, 83_590_140, 23_041_228),
    "regnety_32gf": (32_279_583_362, 145_046_770, 30_261_570),
    "resnet50": (4_089_185_256, 25_557_032, 11_315_688),
    "resnet101": (7_801_406_440, 44_549_160, 16_433_640),
    "resnet152": (11_513_627_624, 60_192_808, 22_755_816),
    "resnext50_32x4d": (4_230_480_872, 25_028_904, 14_602_216),
    "resnext101_32x4d": (7_969_997_800, 44_177_704, 21_426_152),
    "resnext152_32x4d": (11_709_514_728, 59_951_400, 29_855_720),
    "efficientnet_b0": (385_825_092, 5_288_548, 6_748_036),
    "efficientnet_b1": (686_817_992, 7_794_184, 10_884_328),
    "efficientnet_b2": (993_578_282, 9_109_994, 13_832_834),
    "efficientnet_b3": (1_827_162_472, 12_233_232, 23_831_296),
    "efficientnet_b4": (4_393_801_064, 19_341_616, 49_489_032),
    "efficientnet_b5": (10_266_426_072, 30_389_784, 98_857_400),
}

# multiplier: (params M, {resolution: MMACs}).
TF_SLIM_MOBILENET_V2 = {
    "0.35": (1.66, {224: 59, 192: 43, 160: 30, 128: 20, 96: 11}),
    "0.5": (1.95, {224: 97, 192: 71, 160: 50, 128: 32, 96: 18}),
    "0.75": (2.61, {224: 209, 192: 153, 160: 107, 128: 69, 96: 39}),
    "1.0": (3.47, {224: 300, 192: 221, 160: 154, 128: 99, 96: 56}),
    "1.3": (5.34, {224: 509}),
    "1.4": (6.06, {224: 582}),
}

# name: params M (their MAdds: see KNOWN_GAPS).
EFFICIENTNET_LITE = {"efficientnet_lite0": 4.7, "efficientnet_lite1": 5.4,
                     "efficientnet_lite2": 6.1, "efficientnet_lite3": 8.2,
                     "efficientnet_lite4": 13.0}

# Published MACs we do not reproduce: name -> (published GMACs, ours GMACs to 4 decimals).
# - EfficientNet-lite (tensorflow/tpu README: 407M, 631M, 899M, 1.44B, 2.64B MAdds): ours
#   are 3-6% lower while the params match (4,652,008 for lite0, as timm's port). The
#   stem/head/depth/width rules are the builder's and no layer we could add or drop gives
#   those figures, so we take it to be the README's counter including ops beyond conv and
#   linear multiply-accumulates (it does not say which).
# - ConvNeXt-B: torchvision's 15.36 needs about 0.3M MACs (0.002%) more than our 15.3547
#   (params exact); ConvNeXt-T and -S agree to their 2 decimals, so we take it to be a
#   counting detail of theirs, not the structure.
KNOWN_GAPS = {
    "efficientnet_lite0": (0.407, 0.3852),
    "efficientnet_lite1": (0.631, 0.6002),
    "efficientnet_lite2": (0.899, 0.8597),
    "efficientnet_lite3": (1.44, 1.3833),
    "efficientnet_lite4": (2.64, 2.5530),
    "convnext_base": (15.36, 15.3547),
}


def _bias_additions(spec: ArchSpec) -> int:
    return sum(x.out_elements for x in layers(spec) if x.bias)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_params_and_macs(name: str) -> None:
    params, gmacs = TORCHVISION[name]
    c = cost(get_arch(name))
    assert c.params == params
    assert round(c.flops / 1e9, 2) == gmacs


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS_ONLY))
def test_torchvision_params(name: str) -> None:
    assert cost(get_arch(name)).params == TORCHVISION_PARAMS_ONLY[name]


@pytest.mark.parametrize("name", sorted(PYCLS))
def test_pycls_exact_complexity(name: str) -> None:
    spec = get_arch(name)
    c = cost(spec)
    assert (c.flops + _bias_additions(spec), c.params, c.activations) == PYCLS[name]


@pytest.mark.parametrize("mult", sorted(TF_SLIM_MOBILENET_V2))
def test_tf_slim_mobilenet_v2(mult: str) -> None:
    params_m, mmacs = TF_SLIM_MOBILENET_V2[mult]
    spec = get_arch(f"mobilenet_v2_{mult}")
    net = layers(spec)
    norm_params = sum(2 * x.c_out for x in net if x.op == "bn")
    extra_class = net[-1].c_in + 1  # 1001 classes: one more row of weights and a bias
    assert round((cost(spec).params - norm_params + extra_class) / 1e6, 2) == params_m
    for res, published in mmacs.items():
        assert math.floor(cost(get_arch(f"mobilenet_v2_{mult}@{res}")).flops / 1e6) == published


@pytest.mark.parametrize("name", sorted(EFFICIENTNET_LITE))
def test_efficientnet_lite_params(name: str) -> None:
    assert round(cost(get_arch(name)).params / 1e6, 1) == EFFICIENTNET_LITE[name]


@pytest.mark.parametrize("name", sorted(KNOWN_GAPS))
def test_known_gaps_stay_as_reported(name: str) -> None:
    published, ours = KNOWN_GAPS[name]
    gmacs = cost(get_arch(name)).flops / 1e9
    assert round(gmacs, 4) == ours and gmacs < published


def test_every_zoo_network_is_checked_against_a_publication() -> None:
    checked = {n.partition("@")[0] for n in TORCHVISION} | set(TORCHVISION_PARAMS_ONLY)
    checked |= set(PYCLS) | set(EFFICIENTNET_LITE)
    checked |= {f"mobilenet_v2_{m}" for m in TF_SLIM_MOBILENET_V2}
    assert set(list_archs()) == checked


def test_pycls_accuracy_table_networks_are_in_the_zoo(shared_data: Path) -> None:
    with open(shared_data / "accuracy" / "pycls_imagenet_top1.csv", newline="") as f:
        names = {row["spec"] for row in csv.DictReader(f)}
    assert names <= set(list_archs())
    assert names <= set(PYCLS)


def test_every_published_regnet_is_a_feasible_point_of_the_regnet_space() -> None:
    space = get_space("regnet")
    regnets = [name for name in list_archs() if name.startswith("regnet")]
    assert len(regnets) == 24
    for name in regnets:
        # a search samples only feasible points (4 stages): each published RegNet is one
        params = space.resolve(_zoo_params(name))
        assert space.feasible(params), name


def _zoo_params(name: str) -> dict[str, object]:
    data = yaml.safe_load((ZOO_DIR / f"{name}.yaml").read_text())
    assert data["space"] == "regnet"
    return dict(data["params"])


# -- NAME@RES ------------------------------------------------------------------------------


def test_name_at_resolution() -> None:
    spec = get_arch("resnet50@160")
    assert spec.resolution == 160 and spec.name == "resnet50@160"
    base = get_arch("resnet50")
    assert spec.stages == base.stages and base.resolution == 224
    assert cost(spec) == cost(ArchSpec.from_dict({**base.to_dict(), "resolution": 160,
                                                  "name": "resnet50@160"}))
    assert get_arch("regnety_400mf@256").resolution == 256  # space points too


@pytest.mark.parametrize(("name", "message"), [
    ("resnet50@abc", "'abc'"),
    ("resnet50@", "''"),
    ("resnet50@1.5", "'1.5'"),
    ("resnet50@-8", "'-8'"),
    ("resnet50@16", "resolution: 16 is smaller than the network's total stride 32"),
    ("resnet9000@224", "unknown architecture 'resnet9000'"),
])
def test_bad_name_at_resolution(name: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        get_arch(name)


def test_cli_arch_with_resolution() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["cost", "--arch", "resnet50@160", "--json"])
    assert result.exit_code == 0, result.output
    assert '"resolution": 160' in result.output
    assert '"flops": 2087321600' in result.output
    bad = runner.invoke(main, ["cost", "--arch", "resnet50@abc"])
    assert bad.exit_code == 2 and "'abc'" in bad.output
