"""Sizes, outputs and values a user gives, checked before anything is built (issue 23, part H).

Every case drives ``effnas.experiments.cli.main.main`` (or a config loader) and expects one line
``effnas: error: ...`` naming the flag or key: a size beyond its bound (phis, seeds, runs, budget),
a value outside its domain (inf, a warm-up longer than the run, resolution 0, an impossible
accuracy), an output that is not a regular file (a FIFO: a subprocess with a timeout, so a
regression fails instead of hanging), and a Ray address that accepts TCP but never answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from effnas.experiments.cli.main import main
from effnas.experiments.config import stages
from effnas.experiments.config.schema import load_config
from effnas.scaling.family import MAX_PHI, parse_phis
from effnas.search_spaces.common.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def one_line_error(capsys: pytest.CaptureFixture[str], rc: int) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("effnas: error: "), err
    return lines[0]


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- sizes: bounded before anything is built ---------------------------------------------------------

SIZES = [
    (["family", "--phis", "0-99999999999"], "phi 99999999999"),
    (["family", "--phis", "0-" + "9" * 5000], "above 20"),
    (["family", "--phis", "21"], "above 20"),
    (["view", "efficientnet_nano", "--phis", "0-100000000"], "above 20"),
    (["run", "demo", "--plan", "--set", "family.seeds=100000000"], "family.seeds"),
    (["run", "demo", "--plan", "--set", "grid.seeds=[" + ",".join(map(str, range(1001))) + "]"], "grid.seeds"),
    (["run", "demo", "--plan", "--set", "family.phis=[0, 1000000]"], "family.phis"),
    (["run", "demo", "--plan", "--set", "backbones.phi=99"], "backbones.phi"),
    (["run", "demo", "--plan", "--set", "grid.phi=1e6"], "grid.phi"),
    (["run", "demo", "--plan", "--set", "search.trials=9223372036854775807"], "search.trials"),
    (["run", "demo", "--plan", "--set", "search.population=100000000"], "search.population"),
    (["run", "demo", "--plan", "--set", "data.resolution=100000"], "data.resolution"),
    (["train", "--epochs", "1" + "0" * 30], "train.epochs"),
    (["bench-search", "--runs", "100000000", "--out", "b"], "--runs"),
    (["bench-search", "--budget-seconds", "1e308", "--out", "b"], "--budget-seconds"),
    (["bench-search", "--budget-seconds", "inf", "--out", "b"], "--budget-seconds"),
    (["bench-search", "--budget-seconds", "nan", "--out", "b"], "--budget-seconds"),
    (["bench-search", "--population", "1000000000", "--out", "b"], "--population"),
    (["bench-search", "--seed", "4294967295", "--out", "b"], "--seed"),
]


@pytest.mark.parametrize("argv,needle", SIZES, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(SIZES)])
def test_sizes_beyond_their_bound_are_one_line_errors(argv: list[str], needle: str, world: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, main(argv))
    assert needle in line, line
    assert not (world / "b").exists()


def test_the_config_phi_bound_is_scaling_s() -> None:
    assert stages.MAX_PHI == MAX_PHI
    assert parse_phis(f"0-{MAX_PHI}")[-1] == MAX_PHI


@pytest.mark.parametrize("suffix,text", [
    (".toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n"),
    (".json", "[" * 100_000 + "]" * 100_000),
])
def test_deeply_nested_files_are_one_line_errors_naming_the_file(suffix: str, text: str, world: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    f = world / f"deep{suffix}"
    f.write_text(text)
    argv = ["run", str(f), "--plan"] if suffix == ".toml" else ["models", "show", str(f)]
    line = one_line_error(capsys, main(argv))
    assert "deep" in line and "nested too deeply" in line, line


# -- outputs that are not regular files ------------------------------------------------------------------

FIFO_CASES = [
    ["view", "efficientnet_nano", "--phis", "0-1", "-o", "{fifo}"],
    ["models", "show", "efficientnet_nano", "--diagram", "{fifo}"],
    ["weights", "import", "x.pth", "--layout", "timm", "--model", "efficientnet_nano", "-o", "{fifo}"],
    ["export", "--onnx", "{fifo}", "--model", "efficientnet_nano"],
]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("argv", FIFO_CASES, ids=[a[0] for a in FIFO_CASES])
def test_a_fifo_as_output_is_refused_without_blocking(argv: list[str], tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "effnas.experiments.cli.main", *(a.format(fifo=fifo) for a in argv)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    try:
        p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[0]} blocked on a FIFO output")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1 and "not a regular file" in lines[0], p.stderr


# -- values that make no sense ---------------------------------------------------------------------------

VALUES = [
    ("train.lr=inf", "train.lr"),
    ("train.weight_decay=-inf", "train.weight_decay"),
    ("train.momentum=nan", "train.momentum"),
    ("train.warmup_epochs=5", "train.warmup_epochs"),
    ("search.train.warmup_epochs=9", "search.train.warmup_epochs"),
    ("grid.epochs=1", "grid.epochs"),  # demo: train.warmup_epochs 0.3 fits; see the next test
    ("family.seeds=[4294967296]", "family.seeds"),
    ("family.seeds=[-1]", "family.seeds"),
    ("run.seed=4294967296", "run.seed"),
    ("run.seed=-1", "run.seed"),
    ("data.data_fraction=0", "data.data_fraction"),
    ("data.resolution=0", "data.resolution"),
]


@pytest.mark.parametrize("setting,needle", [v for v in VALUES if v[0] != "grid.epochs=1"])
def test_nonsense_values_name_their_key(setting: str, needle: str, world: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, main(["run", "demo", "--plan", "--set", setting]))
    assert needle in line, line


def test_a_stage_shorter_than_the_warm_up_names_both_keys() -> None:
    with pytest.raises(UserError, match=r"grid\.epochs = 1 is shorter than train\.warmup_epochs"):
        load_config("demo", overrides=["train.warmup_epochs=2", "grid.epochs=1"])


@pytest.mark.parametrize("raw,want", [
    ('"x"', "x"), ("x", "x"), ("'a b'", "a b"), ('"it\'s"', "it's"), ("'\"q\"'", '"q"'), ('"a\\u0041"', "aA"),
])
def test_set_strings_are_toml_values(raw: str, want: str) -> None:
    """``--set run.out='"x"'`` reaches effnas as ``run.out="x"``: the quotes are TOML syntax."""
    assert load_config(None, overrides=[f"run.out={raw}"]).run.out == want


def test_set_string_arrays_are_toml_arrays() -> None:
    cfg = load_config(None, overrides=['backbones.models=["resnet18", "mobilenet_v2"]'])
    assert cfg.backbones.models == ("resnet18", "mobilenet_v2")
    assert load_config(None, overrides=["backbones.models=resnet18,mobilenet_v2"]).backbones == cfg.backbones


def test_an_unclosed_quote_is_an_error_naming_the_key() -> None:
    with pytest.raises(UserError, match=r"run\.out in --set must be a string"):
        load_config(None, overrides=['run.out="x'])


def test_export_resolution_zero_is_refused(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, main(["export", "--onnx", "a.onnx", "--model", "efficientnet_nano",
                                        "--resolution", "0"]))
    assert "--resolution" in line and not (world / "a.onnx").exists()


def test_a_data_fraction_leaving_no_image_names_the_key() -> None:
    from effnas.experiments.data import datasets

    ds = datasets.load_dataset("shapes")
    with pytest.raises(UserError, match="data.data_fraction"):
        datasets.split(ds, seed=0, data_fraction=1e-9)


def _family_csv(path: Path, accs: list[str], *, macs: str = "1000") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rows = ["method,phi,macs,params,seed,test_accuracy"]
    rows += [f"compound,{i},{int(macs) * 2 ** i if macs.isdigit() else macs},{100 * 2 ** i},0,{a}"
             for i, a in enumerate(accs)]
    (path / "family.csv").write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("accs,macs,needle", [
    (["0.5", "inf", "0.7"], "1000", "inf"),
    (["0.5", "-5", "0.7"], "1000", "-5"),
    (["0.5", "1e9", "0.7"], "1000", "1000000000"),
    (["nan", "nan", "nan"], "1000", "no values"),
    (["0.5", "oops", "0.7"], "1000", "oops"),
    (["0.5", "0.6", "0.7"], "0", "'macs'"),
])
def test_curves_refuses_impossible_tables(accs: list[str], macs: str, needle: str, world: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    d = _family_csv(world / "fam", accs, macs=macs)
    line = one_line_error(capsys, main(["curves", str(d), "--out", "c"]))
    assert needle in line and ("test_accuracy" in line or "macs" in line), line


def test_curves_refuses_a_header_only_table_and_a_directory_given_twice(world: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    d = world / "empty"
    d.mkdir()
    (d / "family.csv").write_text("method,phi,macs,params,seed,test_accuracy\n")
    assert "no rows" in one_line_error(capsys, main(["curves", str(d), "--out", "c"]))
    f = _family_csv(world / "fam", ["0.5", "0.6", "0.7"])
    line = one_line_error(capsys, main(["curves", str(f), str(world / "fam" / "family.csv"), "--out", "c"]))
    assert "same results" in line, line


def test_curves_reads_percent_as_fractions(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from effnas.scaling.curves import check_results, load_results

    pct = check_results(load_results([str(_family_csv(world / "p", ["50", "60", "70"]))]), metric="test_accuracy")
    frac = check_results(load_results([str(_family_csv(world / "f", ["0.5", "0.6", "0.7"]))]), metric="test_accuracy")
    assert list(pct["test_accuracy"]) == pytest.approx(list(frac["test_accuracy"]))


# -- Ray: an address that accepts TCP and never answers ---------------------------------------------------

@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A local TCP server that accepts connections and never says anything."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()
    for c in conns:
        c.close()


def test_a_silent_ray_address_fails_within_the_answer_timeout(silent_port: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from effnas.experiments.cluster import ray_session

    monkeypatch.setattr(ray_session, "ANSWER_TIMEOUT", 1.0)
    with pytest.raises(UserError, match="does not answer like a Ray cluster"):
        ray_session.probe_address(f"127.0.0.1:{silent_port}")


def test_a_ray_address_that_answers_other_than_grpc_is_refused() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def answer() -> None:
        conn = srv.accept()[0]
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    from effnas.experiments.cluster import ray_session

    try:
        with pytest.raises(UserError, match="not a Ray cluster"):
            ray_session.probe_address(f"127.0.0.1:{srv.getsockname()[1]}", timeout=5)
    finally:
        srv.close()


def test_the_cli_names_a_silent_ray_address_in_one_line(silent_port: int, world: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from effnas.experiments.cluster import ray_session

    monkeypatch.setattr(ray_session, "ANSWER_TIMEOUT", 1.0)
    rc = main(["grid", "--base", "tiny", "--dataset", "digits", "--epochs", "1", "--ray-address",
               f"127.0.0.1:{silent_port}", "--out", "g"])
    assert "--ray-address" in one_line_error(capsys, rc)
