from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archdesign.errors import InputError
from archdesign.hardware.profile import (
    BUILTIN_DIR,
    ProfileError,
    get_profile,
    list_profiles,
    load_profile,
)

BUILTIN = ["a100", "agx-orin", "h100", "orin-nano", "rpi4", "t4", "v100", "x86-avx2"]


def test_builtin_profiles_are_registered():
    assert set(BUILTIN) <= set(list_profiles())


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_profile_loads_and_states_derived_values(name):
    profile = get_profile(name)
    assert profile.name == name
    assert profile.derived, "every datasheet profile says which values are derived"
    assert profile.peak("conv", profile.precision) > 0
    assert profile.memory_bandwidth > 0


def test_datasheet_figures():
    v100 = get_profile("v100")
    assert v100.peak("conv", "float32") == 15.7e12
    assert v100.peak("conv", "float16") == 125e12
    assert v100.peak("depthwise", "float16") == 31.4e12
    assert v100.memory_bandwidth == 900e9
    assert get_profile("h100").peak("linear", "float16") == 989e12
    assert get_profile("rpi4").peak("conv", "float32") == 48e9


def test_unknown_profile_lists_known_ones():
    with pytest.raises(InputError, match=r"unknown profile 'nope'.*'v100'"):
        get_profile("nope")


def test_unknown_dtype_names_known_ones():
    with pytest.raises(ProfileError, match=r"rpi4.*float16.*float32"):
        get_profile("rpi4").peak("conv", "float16")


def _write(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((BUILTIN_DIR / "v100.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"kind": "fpga"}, r"bad.yaml: kind: 'fpga' is not one of \['gpu', 'cpu', 'npu'\]"),
    ({"memory_bandwidth": -1}, r"bad.yaml: memory_bandwidth: must be > 0"),
    ({"memory_bandwidth": None}, r"bad.yaml: missing required key 'memory_bandwidth'"),
    ({"efficiency": {"default": {"compute": 1.5, "memory": 0.5}}},
     r"efficiency.default.compute: a fraction of peak must be in \(0, 1\]"),
    ({"efficiency": {"conv2": {"compute": 0.5, "memory": 0.5}}},
     r"efficiency: unknown op class 'conv2'; allowed: \['default', 'conv'"),
    ({"peak_flops": {"default": {"fp32": 1.0}}}, r"peak_flops.default: unknown dtype 'fp32'"),
    ({"fusion": {"conv_bn": True}}, r"fusion: unknown rule 'conv_bn'"),
    ({"model": {"kind": "fitted"}}, r"model.measurements: a fitted model needs"),
    ({"colour": "red"}, r"unknown key 'colour'"),
])
def test_invalid_profiles_name_file_and_key(tmp_path, changes, message):
    with pytest.raises(ProfileError, match=message):
        load_profile(_write(tmp_path, **changes))


def test_round_trip(tmp_path):
    profile = get_profile("agx-orin")
    profile.save(tmp_path / "copy.yaml")
    again = load_profile(tmp_path / "copy.yaml")
    assert again.to_dict() == profile.to_dict()


def test_profile_by_path(tmp_path):
    path = _write(tmp_path)
    assert get_profile(str(path)).name == "v100"
