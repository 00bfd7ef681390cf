"""Bad input to ``archdesign runs``, ``compare`` and ``search --config``: damaged run
directories (truncated, garbage, FIFOs, directories where files belong) and bad config
files. Every refusal exits with 2, names the file and the key with what is allowed, shows
no traceback and leaves every file as it was: no partial output, and readers never write.
``runs`` lists a damaged run with its problem (and the others as usual) and exits with 0.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from click.testing import CliRunner, Result

from archdesign.cli import main
from archdesign.runs import RunDir
from archdesign.search import SearchConfig, run_search

FIFO = object()
DIRECTORY = object()
MISSING = object()  # the file is removed
#: Marks a journal file of the cases whose contents are the run's own journal plus bytes.
RUN_JOURNAL_HEAD = object()


class Case(NamedTuple):
    id: str
    argv: list[str]
    expected: str  # a piece of the message (whitespace collapsed): the file and the key
    files: dict[str, object]  # path under the working directory -> contents, or a marker


@pytest.fixture(scope="session")
def runs_root(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``a`` and ``b``: runs of objectives score, latency; ``flops``: of score, flops."""
    root = tmp_path_factory.mktemp("workflow") / "runs"
    shutil.copytree(tiny_run, root / "a")
    for name, objectives, seed in (("b", ("score", "latency"), 1),
                                   ("flops", ("score", "flops"), 0)):
        config = SearchConfig(space="resnet-basic", hardware="x86-avx2", trials=6,
                              population=4, strategy="random", seed=seed,
                              objectives=objectives, budgets={"latency": 100.0})
        run_search(config, RunDir(root / name))
    return root


def _setup(tmp_path: Path, runs_root: Path, files: dict[str, object]) -> None:
    shutil.copytree(runs_root, tmp_path / "runs")
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            path.unlink()
        if content is MISSING:
            continue
        if content is FIFO:
            os.mkfifo(path)
        elif content is DIRECTORY:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            assert isinstance(content, str)
            path.write_text(content)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in root.rglob("*")}


def _invoke(tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, argv)


def _run_config(**search: object) -> str:
    return yaml.safe_dump({"search": {"space": "resnet-basic", "hardware": "x86-avx2",
                                      **search}})


_FRAME = "runs/a/frame.json"
_CONFIG = "runs/a/config.yaml"


def _compare_cases() -> list[Case]:
    c = Case
    ab = ["compare", "runs/a", "runs/b"]
    frame = {"ideal": [-40000.0, 2.0], "reference": [-2000.0, 100.0]}
    return [
        c("compare-missing-run", ["compare", "runs/a", "runs/nowhere"],
          "runs/nowhere: not a search run (the directory does not exist)", {}),
        c("compare-directory-of-runs", ["compare", "runs/a", "runs"],
          "runs: not a search run (the directory has no config.yaml)", {}),
        c("compare-one-run", ["compare", "runs/a"], "give two or more runs", {}),
        c("compare-run-twice", ["compare", "runs/a", "runs/b", "runs/a"],
          "runs/a: given twice; compare needs two or more different runs", {}),
        c("compare-run-twice-by-another-name", ["compare", "runs/a", "./runs/a/"],
          "./runs/a/: given twice (the run runs/a)", {}),
        c("compare-other-objectives", ["compare", "runs/a", "runs/flops"],
          "runs/flops: its objectives ['score', 'flops'] differ from runs/a's", {}),
        c("compare-frame-truncated", ab, f"{_FRAME}: not valid JSON",
          {_FRAME: json.dumps(frame)[:30]}),
        c("compare-frame-fifo", ab, f"{_FRAME}: cannot read hypervolume frame (not a "
          "regular file)", {_FRAME: FIFO}),
        c("compare-frame-directory", ab, f"{_FRAME}: cannot read hypervolume frame (a "
          "directory)", {_FRAME: DIRECTORY}),
        c("compare-frame-latin1", ab, f"{_FRAME}: hypervolume frame is not UTF-8",
          {_FRAME: b"\xff\xfe"}),
        c("compare-frame-list", ab, f"{_FRAME}: ideal: expected a list of 2 finite numbers, "
          "one per objective (score, latency)", {_FRAME: "[1, 2]"}),
        c("compare-frame-no-reference", ab, f"{_FRAME}: reference: expected a list of 2",
          {_FRAME: json.dumps({"ideal": [1, 2]})}),
        c("compare-frame-inf", ab, f"{_FRAME}: reference: expected a list of 2 finite "
          "numbers", {_FRAME: '{"ideal": [1, 2], "reference": [1e999, 3]}'}),
        c("compare-frame-nan", ab, f"{_FRAME}: reference: expected a list of 2 finite",
          {_FRAME: '{"ideal": [1, 2], "reference": [NaN, 3]}'}),
        c("compare-frame-bool", ab, f"{_FRAME}: ideal: expected a list of 2 finite numbers",
          {_FRAME: json.dumps({"ideal": [True, 2], "reference": [3, 4]})}),
        c("compare-frame-text", ab, f"{_FRAME}: ideal: expected a list of 2 finite numbers",
          {_FRAME: json.dumps({"ideal": ["1", 2], "reference": [3, 4]})}),
        c("compare-frame-3-objectives", ab, f"{_FRAME}: ideal: expected a list of 2",
          {_FRAME: json.dumps({"ideal": [1, 2, 3], "reference": [4, 5, 6]})}),
        c("compare-frame-inverted", ab, f"{_FRAME}: frame: objective 0 has reference 1.0 "
          "<= ideal 5.0 (each reference must be worse than its ideal)",
          {_FRAME: json.dumps({"ideal": [5, 5], "reference": [1, 1]})}),
        c("compare-frame-key-twice", ab, f"{_FRAME}: the key 'ideal' is given twice",
          {_FRAME: '{"ideal": [1, 2], "ideal": [1, 2], "reference": [3, 4]}'}),
        c("compare-config-search-number", ab, f"{_CONFIG}: search: expected a mapping of "
          "search options", {_CONFIG: "search: 3\n"}),
        c("compare-config-no-search", ab, f"{_CONFIG}: no 'search' section",
          {_CONFIG: "x: 1\n"}),
        c("compare-config-space-list", ab, f"{_CONFIG}: search: space: expected a string, "
          "got [1]", {_CONFIG: "search: {space: [1], hardware: x86-avx2}\n"}),
        c("compare-config-no-hardware", ab, f"{_CONFIG}: search: missing required key "
          "'hardware'", {_CONFIG: "search: {space: resnet-basic}\n"}),
        c("compare-config-trials-bool", ab, f"{_CONFIG}: search: trials: expected an "
          "integer >= 1, got True", {_CONFIG: _run_config(trials=True)}),
        c("compare-config-unknown-key", ab, f"{_CONFIG}: search: unknown key 'colour'; "
          "allowed keys: space, hardware", {_CONFIG: _run_config(colour="red")}),
        c("compare-config-strategy", ab, f"{_CONFIG}: search: --strategy: 'walk' is not one "
          "of", {_CONFIG: _run_config(strategy="walk")}),
        c("compare-config-seed-huge", ab, f"{_CONFIG}: search: seed: expected an integer "
          "from 0 to 4294967295", {_CONFIG: _run_config(seed=2**40)}),
        c("compare-config-python-tag", ab, f"{_CONFIG}: not valid YAML",
          {_CONFIG: '!!python/object/apply:os.system ["touch owned"]\n'}),
        c("compare-journal-garbage", ab, "runs/a/journal.log:9: not a journal record",
          {"runs/a/journal.log": (RUN_JOURNAL_HEAD, b"garbage\n")}),
        c("compare-journal-fifo", ab, "runs/a/journal.log: cannot read the journal (not a "
          "regular file)", {"runs/a/journal.log": FIFO}),
        c("compare-journal-missing", ab, "runs/a: the run has no journal.log",
          {"runs/a/journal.log": MISSING}),
        c("compare-measured-fifo", ab, "runs/a/measured.json: cannot read measurements (not "
          "a regular file)", {"runs/a/measured.json": FIFO}),
        c("compare-measured-list", ab, "runs/a/measured.json: unreadable measurements "
          "(expected a mapping of trial numbers", {"runs/a/measured.json": "[1, 2]"}),
        c("compare-measured-text-trial", ab, "runs/a/measured.json: unreadable measurements",
          {"runs/a/measured.json": '{"a": {"latency_ms": 1.0}}'}),
        c("compare-plot-suffix", [*ab, "--plot", "x.pdf"], "--plot: 'x.pdf' must end in one "
          "of ['.png', '.html']", {}),
        c("compare-plot-missing-dir", [*ab, "--plot", "no/x.png"], "--plot: the directory "
          "'no' of 'no/x.png' does not exist", {}),
        c("compare-plot-onto-run", [*ab, "--plot", "runs/a/pareto.png"], "--plot: "
          "'runs/a/pareto.png' is a file of the run directory", {}),
        c("compare-plot-directory", [*ab, "--plot", "runs"], "'--plot': File 'runs' is a "
          "directory", {}),
        c("compare-plot-bad-run", ["compare", "runs/a", "runs/nowhere", "--plot", "x.png"],
          "runs/nowhere: not a search run", {}),
        c("compare-unknown-option", [*ab, "--colour", "red"], "No such option '--colour'",
          {}),
    ]


_SEARCH = ["search", "--config", "c.yaml", "--run-dir", "out"]
_GOOD = "space: resnet-basic\nhardware: x86-avx2\ntrials: 2\npopulation: 2\nstrategy: random\n"


def _config_cases() -> list[Case]:
    def bad(name: str, extra: str, expected: str, base: str = _GOOD,
            argv: list[str] | None = None, sep: str = ": ") -> Case:
        return Case(f"search-config-{name}", argv or _SEARCH, f"c.yaml{sep}{expected}",
                    {"c.yaml": base + extra})

    options = " with the options: "  # the file's values checked with the command line's

    c = Case
    return [
        c("search-config-missing", _SEARCH, "c.yaml: cannot read search config (No such "
          "file", {}),
        c("search-config-directory", _SEARCH, "'--config': File 'c.yaml' is a directory",
          {"c.yaml": DIRECTORY}),
        c("search-config-fifo", _SEARCH, "c.yaml: cannot read search config (not a regular "
          "file)", {"c.yaml": FIFO}),
        c("search-config-latin1", _SEARCH, "c.yaml: search config is not UTF-8 text",
          {"c.yaml": b"space: r\xe9snet\n"}),
        c("search-config-json-garbage", ["search", "--config", "c.json", "--run-dir", "out"],
          "c.json: not valid JSON", {"c.json": '{"space": 1'}),
        c("search-config-json-key-twice", ["search", "--config", "c.json", "--run-dir",
                                           "out"],
          "c.json: the key 'space' is given twice", {"c.json": '{"space": "a", "space": "b"}'}),
        bad("empty", "", "expected a mapping of search options (e.g. space: mobilenet), got "
            "NoneType", base=""),
        bad("list", "[1, 2]\n", "expected a mapping of search options", base=""),
        bad("scalar", "42\n", "expected a mapping of search options", base=""),
        bad("not-yaml", "space: [\n", "not valid YAML", base=""),
        bad("python-tag", '!!python/object/apply:os.system ["touch owned"]\n',
            "not valid YAML: could not determine a constructor for the tag", base=""),
        bad("python-tag-value", "space: !!python/name:os.system\nhardware: x86-avx2\n",
            "not valid YAML: could not determine a constructor", base=""),
        bad("key-twice", "space: regnet\n", "the key 'space' is given twice"),
        bad("unknown-key", "colour: red\n", "unknown key 'colour'; allowed keys: space, "
            "hardware, objectives, budgets"),
        bad("budget-at-top", "latency: 5ms\n", "unknown key 'latency' (budgets go under "
            "budgets:"),
        bad("run-config-extra-key", "colour: red\n", "unknown key 'colour' beside search: "
            "(a run's config.yaml holds search, archdesign_version, score_objective",
            base=_run_config()),
        bad("run-config-search-number", "", "search: expected a mapping of search options",
            base="search: 3\n"),
        bad("run-config-workers", "", "search: unknown key 'workers'",
            base=_run_config(workers=2)),
        bad("trials-text", "trials: many\n", "trials: expected an integer >= 1, got 'many'",
            base=_GOOD.replace("trials: 2\n", "")),
        bad("trials-0", "trials: 0\n", "trials: expected an integer >= 1, got 0",
            base=_GOOD.replace("trials: 2\n", "")),
        bad("trials-float", "trials: 2.5\n", "trials: expected an integer >= 1, got 2.5",
            base=_GOOD.replace("trials: 2\n", "")),
        bad("trials-bool", "trials: true\n", "trials: expected an integer >= 1, got True",
            base=_GOOD.replace("trials: 2\n", "")),
        bad("seed-negative", "seed: -1\n", "seed: expected an integer from 0 to 4294967295, "
            "got -1"),
        bad("seed-2-32", "seed: 4294967296\n", "seed: expected an integer from 0 to "
            "4294967295, got 4294967296"),
        bad("seed-huge", "seed: 99999999999999999999\n", "seed: expected an integer from 0 "
            "to 4294967295"),
        bad("workers-0", "workers: 0\n", "workers: expected an integer >= 1, got 0"),
        bad("population-1", "population: 1\n", "population: expected an integer >= 2",
            base=_GOOD.replace("population: 2\n", "")),
        bad("batch-0", "batch: 0\n", "batch: expected an integer >= 1, got 0"),
        bad("measure-negative", "measure: -1\n", "measure: expected an integer >= 0"),
        bad("measure-bool", "measure: true\n", "measure: expected an integer >= 0, got True"),
        bad("resume-text", "resume: yes please\n", "resume: expected true or false, got "
            "'yes please'"),
        bad("space-list", "", "space: expected a string, got ['resnet-basic']",
            base="space: [resnet-basic]\nhardware: x86-avx2\n"),
        bad("run-dir-number", "run_dir: 5\n", "run_dir: expected a string, got 5",
            argv=["search", "--config", "c.yaml"]),
        bad("ray-address-list", "ray_address: [1]\n", "ray_address: expected a string"),
        bad("budgets-list", "budgets: [3]\n", "budgets: expected a mapping of budgets, e.g. "
            "{latency: 4ms}; allowed budgets: latency, flops"),
        bad("budget-unknown", "budgets: {speed: 3}\n", "budgets: unknown budget 'speed'; "
            "allowed budgets: latency, flops"),
        bad("budget-text", "budgets: {latency: fast}\n", "budgets: --latency: expected a "
            "number with an optional unit (ms, s, us"),
        bad("budget-negative", "budgets: {latency: -1}\n", "budgets: --latency: the budget "
            "must be a positive number, got -1"),
        bad("budget-nan", "budgets: {latency: .nan}\n", "budgets: --latency: the budget "
            "must be a positive number, got nan"),
        bad("budget-inf", "budgets: {flops: .inf}\n", "budgets: --flops: the budget must be "
            "a positive number, got inf"),
        bad("budget-bool", "budgets: {latency: true}\n", "budgets: --latency: expected a "
            "number"),
        bad("budget-list", "budgets: {latency: [3]}\n", "budgets: --latency: expected a "
            "number"),
        bad("objectives-number", "objectives: 3\n", "objectives: expected a list of "
            "objective names (or one comma-separated string), got 3"),
        bad("objectives-unknown", "objectives: [beauty]\n", "--objectives: 'beauty' is not "
            "one of ['score', 'latency'", sep=options),
        bad("objectives-twice", "objectives: [score, score]\n", "--objectives: ['score', "
            "'score'] names an objective twice", sep=options),
        bad("objectives-empty", "objectives: []\n", "--objectives: give at least one of",
            sep=options),
        bad("strategy-unknown", "", "--strategy: 'walk' is not one of ['mp+nsga2'",
            base=_GOOD.replace("strategy: random", "strategy: walk"),
            sep=options),
        bad("dtype-unknown", "dtype: float64\n", "--dtype: 'float64' is not one of",
            sep=options),
        bad("latency-model-unknown", "latency_model: magic\n", "latency_model: 'magic' is "
            "not one of roofline, table, fitted"),
        bad("score-unknown", "score: vibes\n", "score: unknown objective 'vibes'; known "
            "objectives: ['activations', 'deepmad'"),
        bad("score-file-missing", "score: nowhere.yaml\n", "score: nowhere.yaml"),
        bad("space-unknown", "", "space: unknown search space 'nope'; known spaces: "
            "['convnext'", base="space: nope\nhardware: x86-avx2\n"),
        bad("space-file-missing", "", "space: missing.yaml: cannot read search space (No "
            "such file", base="space: missing.yaml\nhardware: x86-avx2\n"),
        bad("hardware-unknown", "", "hardware: unknown profile 'toaster'; known profiles: "
            "['a100'", base="space: resnet-basic\nhardware: toaster\n"),
        bad("no-space", "", "does not set space", base="hardware: x86-avx2\n", sep=" "),
        bad("resume-without-run-dir", "resume: true\n", "sets resume: true; give run_dir "
            "there or --run-dir", argv=["search", "--config", "c.yaml"], sep=" "),
        # the file's values against the command line's
        Case("search-config-resume-changed-seed",
             ["search", "--config", "c.yaml", "--seed", "7"], "seed",
             {"c.yaml": "run_dir: runs/a\nresume: true\n"}),
        Case("search-config-over-a-run", ["search", "--config", "c.yaml"], "--resume",
             {"c.yaml": _GOOD + "run_dir: runs/a\n"}),
        Case("search-config-resume-missing-run", ["search", "--config", "c.yaml"],
             "runs/nowhere: not a search run", {"c.yaml": "run_dir: runs/nowhere\n"
                                                          "resume: true\n"}),
        Case("search-config-bad-option-over-file", [*_SEARCH, "--trials", "0"],
             "'--trials': 0 is not in the range x>=1", {"c.yaml": _GOOD}),
        Case("search-config-file-ok-option-bad", [*_SEARCH, "--objectives", "flops,flops"],
             "c.yaml with the options: --objectives: ['flops', 'flops'] names an objective "
             "twice", {"c.yaml": _GOOD}),
    ]


def _runs_cases() -> list[Case]:
    return [
        Case("runs-missing-directory", ["runs", "nowhere"], "nowhere: does not exist; give "
             "a directory of runs", {}),
        Case("runs-a-file", ["runs", "notes.txt"], "Directory 'notes.txt' is a file",
             {"notes.txt": "x"}),
        Case("runs-unknown-option", ["runs", "runs", "--sort", "hv"], "No such option",
             {}),
    ]


CASES = [*_compare_cases(), *_config_cases(), *_runs_cases()]


def _write_case_files(tmp_path: Path, runs_root: Path, case: Case) -> None:
    files: dict[str, object] = {}
    for name, content in case.files.items():
        if isinstance(content, tuple) and content[0] is RUN_JOURNAL_HEAD:
            content = (runs_root / Path(name).relative_to("runs")).read_bytes() + content[1]
        files[name] = content
    _setup(tmp_path, runs_root, files)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(case: Case, runs_root: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _write_case_files(tmp_path, runs_root, case)
    before = _tree(tmp_path)
    result = _invoke(tmp_path, case.argv, monkeypatch)
    output = " ".join(result.output.split())
    assert "Traceback" not in output
    assert result.exit_code == 2, (result.exception, output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert case.expected in output, output
    # nothing written: no partial run directory, plot or file; the runs read as they were
    assert _tree(tmp_path) == before


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


# -- runs: a damaged run is listed with its problem ------------------------------------------

_PARETO = "runs/a/pareto.json"
_RESULTS = {"trials": 6, "feasible": 0, "front": [], "hypervolume": 0.0}
DAMAGED: dict[str, tuple[dict[str, object], str]] = {
    "pareto-truncated": ({_PARETO: json.dumps(_RESULTS)[:20]}, f"{_PARETO}: not valid JSON"),
    "pareto-list": ({_PARETO: "[1, 2]"}, f"{_PARETO}: expected the mapping a search writes "
                                         "(trials, feasible, front, hypervolume), got list"),
    "pareto-no-front": ({_PARETO: json.dumps({k: v for k, v in _RESULTS.items()
                                              if k != "front"})},
                        f"{_PARETO}: no 'front' (a results file holds trials, feasible"),
    "pareto-trials-inf": ({_PARETO: json.dumps(_RESULTS).replace('"trials": 6',
                                                                 '"trials": 1e999')},
                          f"{_PARETO}: trials: expected a whole number >= 0, got inf"),
    "pareto-trials-float": ({_PARETO: json.dumps({**_RESULTS, "trials": 6.5})},
                            f"{_PARETO}: trials: expected a whole number >= 0, got 6.5"),
    "pareto-feasible-negative": ({_PARETO: json.dumps({**_RESULTS, "feasible": -1})},
                                 f"{_PARETO}: feasible: expected a whole number >= 0"),
    "pareto-front-text": ({_PARETO: json.dumps({**_RESULTS, "front": "abc"})},
                          f"{_PARETO}: front: expected a list of networks, got str"),
    "pareto-hypervolume-text": ({_PARETO: json.dumps({**_RESULTS, "hypervolume": "nan"})},
                                f"{_PARETO}: hypervolume: expected a number from 0 to 1"),
    "pareto-hypervolume-2": ({_PARETO: json.dumps({**_RESULTS, "hypervolume": 2.0})},
                             f"{_PARETO}: hypervolume: expected a number from 0 to 1 "
                             "(normalized in the run's frame), got 2.0"),
    "pareto-directory": ({_PARETO: DIRECTORY}, f"{_PARETO}: cannot read results (a "
                                               "directory)"),
    "pareto-fifo": ({_PARETO: FIFO}, f"{_PARETO}: cannot read results (not a regular file)"),
    "config-truncated-at-a-line": ({_CONFIG: "search:\n  space: resnet-basic\n"},
                                   f"{_CONFIG}: search: missing required key 'hardware'"),
    "config-truncated": ({_CONFIG: "search:\n  space: resnet-basic\n  hard"},
                         f"{_CONFIG}: not valid YAML"),
    "config-search-number": ({_CONFIG: "search: 3\n"},
                             f"{_CONFIG}: search: expected a mapping of search options"),
    "config-space-list": ({_CONFIG: "search: {space: [1], hardware: x86-avx2}\n"},
                          f"{_CONFIG}: search: space: expected a string, got [1]"),
    "config-trials-bool": ({_CONFIG: _run_config(trials=True)},
                           f"{_CONFIG}: search: trials: expected an integer >= 1, got True"),
    "config-key-twice": ({_CONFIG: _run_config() + "search: {}\n"},
                         f"{_CONFIG}: the key 'search' is given twice"),
    "config-python-tag": ({_CONFIG: '!!python/object/apply:os.system ["touch owned"]\n'},
                          f"{_CONFIG}: not valid YAML"),
    "config-fifo": ({_CONFIG: FIFO}, f"{_CONFIG}: cannot read run config (not a regular "
                                     "file)"),
    "journal-garbage-first-line": ({"runs/a/journal.log": "garbage\n"},
                                   "runs/a/journal.log:1: not a journal record"),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_runs_lists_a_damaged_run_with_its_problem(name: str, runs_root: Path,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    files, expected = DAMAGED[name]
    _setup(tmp_path, runs_root, files)
    (tmp_path / "runs" / "notes" / "old").mkdir(parents=True)  # not runs: passed over
    (tmp_path / "runs" / "notes" / "config.yaml").write_text("x: 1\n")
    (tmp_path / "runs" / "notes" / "old" / "todo.txt").write_text("x\n")
    before = _tree(tmp_path)
    result = _invoke(tmp_path, ["runs", "runs", "--json"], monkeypatch)
    assert result.exit_code == 0, (result.exception, result.output)
    listed = {Path(r["path"]).name: r for r in json.loads(result.output)["runs"]}
    assert sorted(listed) == ["a", "b", "flops"]
    assert expected in " ".join(str(listed["a"]["problem"]).split())
    assert listed["a"]["trials"] is None
    for good in ("b", "flops"):
        assert listed[good]["problem"] is None and listed[good]["trials"] == 6
    table = _invoke(tmp_path, ["runs", "runs"], monkeypatch)
    assert table.exit_code == 0 and "Traceback" not in table.output
    assert expected in " ".join(table.output.split())
    assert _tree(tmp_path) == before  # readers never write


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_runs_lists_an_unreadable_run(runs_root: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _setup(tmp_path, runs_root, {})
    (tmp_path / "runs" / "a" / "pareto.json").chmod(0)
    result = _invoke(tmp_path, ["runs", "runs", "--json"], monkeypatch)
    assert result.exit_code == 0, result.output
    listed = {Path(r["path"]).name: r for r in json.loads(result.output)["runs"]}
    assert "runs/a/pareto.json: cannot read results (Permission denied)" in \
        listed["a"]["problem"]


def test_compare_without_a_frame_file_computes_the_same_frame(
        runs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run from before frames were stored has no frame.json: its frame comes from its
    own copies of space and profile, the same as the stored one."""
    _setup(tmp_path, runs_root, {})
    argv = ["compare", "runs/a", "runs/b", "--json"]
    stored = _invoke(tmp_path, argv, monkeypatch)
    assert stored.exit_code == 0, stored.output
    (tmp_path / "runs" / "a" / "frame.json").unlink()
    before = _tree(tmp_path)
    computed = _invoke(tmp_path, argv, monkeypatch)
    assert computed.exit_code == 0, computed.output
    assert json.loads(computed.output) == json.loads(stored.output)
    assert _tree(tmp_path) == before


def test_config_measure_and_the_command_line_each_set_their_half(tmp_path: Path) -> None:
    """``measure: N`` is --measure --measure-count N; --measure-count alone changes N."""
    from archdesign.cli.search import _with_file, search_command

    (tmp_path / "c.yaml").write_text(_GOOD + "measure: 3\n")
    for argv, measure, count in (([], True, 3), (["--measure-count", "5"], True, 5),
                                 (["--measure"], True, 3)):
        ctx = search_command.make_context("search", ["--config", str(tmp_path / "c.yaml"),
                                                     *argv])
        opts = _with_file(ctx, dict(ctx.params))
        assert (opts["measure"], opts["measure_count"]) == (measure, count), argv
    (tmp_path / "c.yaml").write_text(_GOOD + "measure: 0\n")
    ctx = search_command.make_context("search", ["--config", str(tmp_path / "c.yaml"),
                                                 "--measure"])
    opts = _with_file(ctx, dict(ctx.params))
    assert (opts["measure"], opts["measure_count"]) == (True, 8)


def test_a_file_value_the_command_line_overrides_is_not_looked_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's space is unknown, but --space replaces it: the search runs."""
    (tmp_path / "c.yaml").write_text(_GOOD.replace("resnet-basic", "nope"))
    result = _invoke(tmp_path, [*_SEARCH, "--space", "resnet-basic"], monkeypatch)
    assert result.exit_code == 0, (result.exception, result.output)
    kept = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["search"]
    assert (kept["space"], kept["trials"], kept["strategy"]) == ("resnet-basic", 2, "random")
