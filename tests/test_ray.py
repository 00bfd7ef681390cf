"""Ray as a search uses it: a local instance of its own, a dead address, a cluster that
loses a node, and no process left behind by a driver that is killed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from archdesign.evaluate import Candidate, EvalConfig, Evaluation, RayEvaluator, evaluate_chunk
from archdesign.report import load_trials
from archdesign.runs import RunDir
from archdesign.search import SearchConfig, run_search

ray = pytest.importorskip("ray")

SEARCH = [sys.executable, "-m", "archdesign", "search", "--space", "resnet-basic",
          "--hardware", "a100", "--strategy", "nsga2", "--population", "10"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SEARCH, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_ray_address_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    done = _cli("--trials", "10", "--workers", "2", "--ray-address", address,
                "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.split())
    assert f"--ray-address {address}: no Ray cluster answers there" in text
    assert not (tmp_path / "run").exists()  # nothing written for a search that never ran


def test_local_ray_prints_only_our_lines_and_caps_the_workers(tmp_path: Path) -> None:
    tmp = tempfile.mkdtemp(prefix="ad", dir="/tmp")  # Ray's socket paths must stay short
    try:
        done = _cli("--trials", "20", "--workers", "64", "--run-dir", str(tmp_path / "run"),
                    env={"TMPDIR": tmp, "COLUMNS": "1000"})  # one line per message
        assert done.returncode == 0, done.stderr
        lines = [line.strip() for line in done.stderr.splitlines()
                 if line.strip() and not line.startswith("trials")]  # the progress bar
        cpus = len(os.sched_getaffinity(0))
        assert f"WARNING archdesign.evaluate: --workers 64: Ray reports {cpus} CPUs; using " \
               f"{cpus} workers" in lines, lines
        ours = re.compile(r"search resnet-basic on a100|WARNING archdesign\.|"
                          r"\d+ trials evaluated")
        assert [line for line in lines if not ours.match(line)] == [], lines
        assert os.listdir(tmp) == []  # the instance's session files went with it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- a driver killed by SIGKILL ----------------------------------------------------------


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(entry)] = (int(stat[1]), stat[0], cmd)
    return out


def _session(tmp: str, driver: int) -> set[int]:
    """The Ray processes of the session in ``tmp``: those naming it, and their children
    (workers name only their task)."""
    procs = _processes()
    found = {pid for pid, (_, _, cmd) in procs.items() if tmp in cmd and pid != driver}
    while True:
        more = {pid for pid, (ppid, _, _) in procs.items() if ppid in found} - found
        if not more:
            return found
        found |= more


def _alive(pids: set[int]) -> set[int]:
    procs = _processes()
    return {pid for pid in pids if pid in procs and procs[pid][1] != "Z"}


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_sigkilled_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    tmp = tempfile.mkdtemp(prefix="ad", dir="/tmp")
    driver = subprocess.Popen([*SEARCH, "--trials", "1000000", "--workers", "2",
                               "--run-dir", str(tmp_path / "run")],
                              env={**os.environ, "TMPDIR": tmp}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    session: set[int] = set()
    try:
        # running: a raylet with workers (the search's tasks) under it
        def workers_up() -> bool:
            procs = _processes()
            return any("ray::" in procs[p][2] for p in _session(tmp, driver.pid) if p in procs)

        assert _wait(workers_up, 180), "the search never started its Ray workers"
        session = _session(tmp, driver.pid)
        commands = " ".join(_processes()[p][2] for p in session)
        assert "raylet" in commands and "gcs_server" in commands
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        assert _wait(lambda: not _alive(session), 30), \
            [_processes()[p][2][:100] for p in _alive(session)]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in _alive(session):  # only processes this test started
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


# -- a cluster of two nodes -------------------------------------------------------------


def _recording(directory: str) -> Callable[[EvalConfig, list[Candidate]], list[Evaluation]]:
    def evaluate(config: EvalConfig, chunk: list[Candidate]) -> list[Evaluation]:
        node = ray.get_runtime_context().get_node_id()
        with open(os.path.join(directory, node), "a") as fh:
            fh.write(f"{chunk[0][0]}\n")
        return evaluate_chunk(config, chunk)

    return evaluate


@pytest.fixture()
def two_nodes() -> Iterator[tuple[object, object]]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield cluster, second
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_search_spreads_over_two_nodes_and_survives_losing_one(two_nodes, tmp_path: Path
                                                                ) -> None:
    cluster, second = two_nodes
    config = SearchConfig("mobilenet", "x86-avx2", strategy="nsga2", trials=400,
                          population=20, budgets={"latency": 4.0}, seed=2)
    records = tmp_path / "records"
    records.mkdir()
    second_id = second.node_id  # type: ignore[attr-defined]

    def remove_second_once_it_worked() -> None:
        if _wait(lambda: (records / second_id).exists(), 120):
            cluster.remove_node(second)  # type: ignore[attr-defined]

    killer = threading.Thread(target=remove_second_once_it_worked)
    killer.start()
    with RayEvaluator(config.eval_config, workers=2, min_chunk=5,
                      evaluate_fn=_recording(str(records))) as remote:
        run_search(config, RunDir(tmp_path / "cluster"), evaluator=remote)
    killer.join()
    assert len(ray.nodes()) == 2 and not all(n["Alive"] for n in ray.nodes())
    nodes = {p.name: p.read_text().split() for p in records.iterdir()}
    assert second_id in nodes and len(nodes) == 2  # both nodes evaluated
    run_search(config, RunDir(tmp_path / "local"))

    def trials(name: str) -> list[tuple]:
        return [(t.number, t.state, t.params, t.values, t.user_attrs.get("metrics"))
                for t in load_trials(RunDir(tmp_path / name), config)]

    assert len(trials("cluster")) == 400
    assert trials("cluster") == trials("local")  # no trial lost or changed
