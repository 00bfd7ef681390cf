from __future__ import annotations

from pathlib import Path

import pytest

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.measurements import read_measurements
from archdesign.spaces import get_space
from archdesign.zoo import get_arch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_spec_column_zoo_names_files_resolution_and_batch(tmp_path: Path) -> None:
    get_arch("resnet18").save(tmp_path / "net.yaml")
    path = _write(tmp_path, "spec,resolution,batch,latency_ms,note\n"
                            "resnet18,,,1.5,x\n"
                            "net.yaml,160,8,2.5,y\n"
                            "resnet50@128,,,3.0,z\n")
    data = read_measurements(path, batch=4)
    assert [m.line for m in data.rows] == [2, 3, 4]
    assert data.values == [1.5, 2.5, 3.0] and data.skipped == 0
    assert [m.batch for m in data.rows] == [4, 8, 4]
    assert data.rows[0].spec == get_arch("resnet18")
    assert data.rows[1].spec.resolution == 160
    assert data.rows[2].spec.resolution == 128


def test_space_points_with_defaults_for_missing_parameters(tmp_path: Path) -> None:
    path = _write(tmp_path, "l0,l1,l2,l3,l4,l5,l6,l7,acc\n"
                            "id,ir_5x5_t6,id,ir_3x3_t3,ir_5x5_t6,ir_3x3_t3,id,id,91.2\n"
                            "id,id,id,id,id,id,,,90.0\n")
    data = read_measurements(path, column="acc", space="nas-bench-macro")
    assert cost(data.rows[0].spec).params == 890_666  # the benchmark's own count
    default = get_space("nas-bench-macro").defaults()
    assert data.rows[1].network.startswith("nas-bench-macro:l0=id")
    assert data.rows[1].spec == get_space("nas-bench-macro").spec(
        {**default, **{f"l{i}": "id" for i in range(6)}})


def test_rows_without_a_usable_value_are_skipped_and_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, "spec,latency_ms\nresnet18,\nresnet18,-1\nresnet18,nan\n"
                            "resnet18,abc\nresnet18,inf\nresnet18,2.0\n")
    data = read_measurements(path)
    assert data.values == [2.0] and data.skipped == 5


@pytest.mark.parametrize(("text", "message"), [
    ("spec,latency_ms\nnot_a_net,1.0\n", r"m.csv:2: column 'spec': unknown architecture"),
    ("spec,ms\nresnet18,1.0\n", r"m.csv: no column 'latency_ms'"),
    ("x,latency_ms\n1,1.0\n", r"m.csv: rows name no network"),
    ("spec,batch,latency_ms\nresnet18,0,1.0\n", r"m.csv:2: column 'batch': expected an integer"),
    ("spec,resolution,latency_ms\nresnet18,2.5,1.0\n", r"m.csv:2: column 'resolution'"),
    ("space,s2.kernel,latency_ms\nmobilenet,4,1.0\n", r"m.csv:2: column 'space':.*s2.kernel"),
    ("space,latency_ms\nnope,1.0\n", r"m.csv:2: column 'space': unknown search space"),
])
def test_bad_rows_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_measurements(_write(tmp_path, text))


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing.csv: cannot read measurement file"):
        read_measurements(tmp_path / "missing.csv")
    (tmp_path / "b.csv").write_bytes(b"spec,latency_ms\n\xe9\xff,1\n")
    with pytest.raises(InputError, match=r"b.csv: .*UTF-8"):
        read_measurements(tmp_path / "b.csv")
    with pytest.raises(InputError, match=r"not a regular file|a directory"):
        read_measurements(tmp_path)


def test_reads_the_shared_ofa_measurements() -> None:
    path = DATA / "latency" / "ofa_mbv3_gpu.csv"
    if not path.is_file():
        pytest.skip("shared data not present")
    data = read_measurements(path, column="2080ti_64", space="ofa-mbv3", batch=64)
    assert len(data.rows) == 5000 and data.skipped == 0
    first = cost(data.rows[0].spec)
    assert (first.flops, first.params) == (194_900_424, 4_457_920)
    assert data.rows[0].batch == 64
