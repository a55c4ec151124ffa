"""Corrupt, truncated, torn and full (issue 23, part I): a run file that cannot be read is named and
nothing is cleared; damaged checkpoints are named on resume; torn JSON-lines files lose only
their last line; a full disk and a closed pipe end in one line or quietly.

Full disks are injected in this process (a monkeypatched ``torch.save`` or write), never made.
"""

from __future__ import annotations

import errno
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import event

import effnas.nas.study as study
from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import JobConfig, load_config
from effnas.experiments.estimators.supernet import train_supernet
from effnas.experiments.train import rundir
from effnas.experiments.train.loop import train
from effnas.scaling.runner import Job, run_jobs
from effnas.search_spaces import get
from effnas.search_spaces.common.atomic import DiskFull, atomic_text
from effnas.search_spaces.common.errors import UserError

FAST: dict[str, Any] = {"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 2, "batch_size": 64,
                        "data_fraction": 0.3, "quiet": True, "threads": 1}
SUPERNET = {"search.space": "nano", "data.dataset": "shapes", "data.data_fraction": 0.2, "train.batch_size": 64,
            "train.optimizer": "adamw", "train.lr": 0.004, "train.threads": 1, "supernet.epochs": 1}
ARGS = ["train", "--model", "tiny", "--dataset", "digits", "--resolution", "16", "--epochs", "2", "--batch-size", "64",
        "--set", "data.data_fraction=0.3", "--threads", "1", "--quiet"]


def _cfg() -> Any:
    return load_config(None, overrides=[f"{k}={v}" for k, v in SUPERNET.items()])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``root``."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(capsys: pytest.CaptureFixture[str], rc: int, code: int = 2) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("effnas: error: "), err
    return lines[0]


def _interrupted(out: Path, after: int = 1) -> None:
    """A run of FAST into ``out`` stopped (as by Ctrl-C) right after epoch ``after``'s checkpoint."""
    def stop(record: dict[str, Any]) -> bool:
        if record["epoch"] == after:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        train(JobConfig(**FAST, out_dir=str(out)), on_epoch=stop)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(JobConfig(**FAST, out_dir=str(out)))["status"] == "completed"
    return out


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stopped") / "run"
    _interrupted(out)
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


# -- 1. nothing of the user's is cleared ---------------------------------------------------------

def _garble(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)] + b"\x00\xff garbage")


@pytest.mark.parametrize("name, damage", [
    ("metrics.json", _garble), ("metrics.json", lambda p: p.write_text("")),
    ("metrics.json", lambda p: p.write_text("[1]")), ("config.json", _garble),
])
def test_an_unreadable_finished_run_is_named_and_never_cleared(finished: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str], name: str,
                                                              damage: Callable[[Path], None]) -> None:
    run = _copy(finished, tmp_path)
    damage(run / name)
    before = snapshot(run)
    rc = main([*ARGS, "--lr", "0.01", "--out", str(run)])  # another config: today's code cleared the run
    assert f"unreadable: {run / name}" in one_line_error(capsys, rc)
    assert snapshot(run) == before


@pytest.mark.parametrize("name, damage", [
    ("last.pt", _garble), ("last.pt", lambda p: p.write_bytes(b"")),
    ("epochs.jsonl", lambda p: p.write_text('{"epoch": 1\n{"epoch": 2}\n')),
])
def test_an_unreadable_unfinished_run_is_not_cleared_by_another_config(stopped: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str], name: str,
                                                                       damage: Callable[[Path], None]) -> None:
    run = _copy(stopped, tmp_path)
    damage(run / name)
    before = snapshot(run)
    rc = main([*ARGS, "--lr", "0.01", "--out", str(run)])
    assert f"unreadable: {run / name}" in one_line_error(capsys, rc)
    assert snapshot(run) == before


def test_an_unreadable_result_json_stops_the_runner(tmp_path: Path) -> None:
    run = tmp_path / "members" / "a"
    run.mkdir(parents=True)
    (run / "result.json").write_text('{"config": {}, "metrics": {"status": "compl')
    calls: list[dict[str, Any]] = []
    with pytest.raises(UserError, match=r"unreadable: .*result.json"):
        run_jobs([Job("members/a", get("tiny"))], lambda c, **_: calls.append(c) or {"status": "completed"},
                 train_config={}, out_dir=tmp_path, resume=True)
    assert not calls and (run / "result.json").read_text().endswith("compl")


def test_a_run_of_another_config_names_the_key_that_differs(finished: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    moved = _copy(finished, tmp_path)  # a moved run directory: out_dir differs, and is not what counts
    rc = main([*ARGS, "--lr", "0.01", "--out", str(moved), "--resume"])
    assert "different config (its 'lr' differs)" in one_line_error(capsys, rc)
    assert main([*ARGS, "--out", str(moved), "--resume"]) == 0  # the same config: reused
    assert "not retrained" in capsys.readouterr().out


# -- 2. corrupt checkpoints are named ------------------------------------------------------------

def _legacy(p: Path) -> None:
    ck = torch.load(p, weights_only=True)
    del ck["optimizer"]
    torch.save(ck, p)


def _nan(p: Path) -> None:
    ck = torch.load(p, weights_only=True)
    k = next(k for k, v in ck["model"].items() if v.is_floating_point())
    flat = ck["model"][k].flatten().clone()
    flat[0] = float("nan")
    ck["model"][k] = flat.reshape(ck["model"][k].shape)
    torch.save(ck, p)


def _reshaped(p: Path) -> None:
    ck = torch.load(p, weights_only=True)
    k = next(k for k, v in ck["model"].items() if v.dim() > 1)
    ck["model"][k] = ck["model"][k][:1].clone()
    torch.save(ck, p)


def _flipped(p: Path) -> None:
    """One bit flipped inside the tensor data: still loads (torch.load checks no CRC), finite."""
    with zipfile.ZipFile(p) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(p.read_bytes())
    data[info.header_offset + 200] ^= 0x01
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, says", [
    (_flipped, "fails its CRC check"),
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated or corrupt"),
    (lambda p: p.write_bytes(b""), "truncated or corrupt"),
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "truncated or corrupt"),
    (lambda p: torch.save([1, 2], p), "holds a list"),
    (_legacy, "lacks 'optimizer'"),
    (_nan, "NaN or inf"),
    (_reshaped, "has shape"),
])
def test_a_damaged_last_pt_is_named_on_resume(stopped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              damage: Callable[[Path], None], says: str) -> None:
    run = _copy(stopped, tmp_path)
    damage(run / "last.pt")
    before = snapshot(run)
    line = one_line_error(capsys, main([*ARGS, "--out", str(run), "--resume"]))
    assert str(run / "last.pt") in line and says in line and "without --resume" in line
    assert snapshot(run) == before


def test_a_damaged_supernet_pt_is_named_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "sn"
    train_supernet(_cfg(), out, progress=False)
    (out / "supernet.pt").write_bytes((out / "supernet.pt").read_bytes()[:100])
    with pytest.raises(UserError, match=r"supernet.pt' is truncated or corrupt .*without --resume"):
        train_supernet(_cfg(), out, resume=True, progress=False)
    torch.save({"state": {}, "epoch": 1}, out / "supernet.pt")  # an older layout
    with pytest.raises(UserError, match="lacks 'optimizer'"):
        train_supernet(_cfg(), out, resume=True, progress=False)


def test_junk_in_a_study_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "study.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 4)
    rc = main(["export", "--storage", f"sqlite:///{db}", "--trial", "0", "-o", str(tmp_path / "x.json")])
    # refused before Optuna opens it (not a database of an Optuna study), or by Optuna's open: one line either way
    named = ("cannot open storage", "holds no Optuna study")
    line = one_line_error(capsys, rc)
    assert any(n in line for n in named), line
    rc = main(["search", "--space", "nano", "--dataset", "shapes", "--trials", "1", "--resume", "--storage",
               f"sqlite:///{db}", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err  # the search's header line, then the error
    last = err.splitlines()[-1]
    assert rc == 2 and "Traceback" not in err and last.startswith("effnas: error:") and any(n in last for n in named)


# -- torn JSON lines -----------------------------------------------------------------------------

def test_a_torn_epochs_jsonl_loses_its_last_line_only(stopped: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy(stopped, tmp_path)
    with open(run / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # the disk filled up mid-append
    assert [r["epoch"] for r in rundir.RunDir(run).read_epochs()] == [1]
    assert "torn last line" in capsys.readouterr().err
    m = train(JobConfig(**FAST, out_dir=str(run), resume=True))
    assert m["status"] == "completed" and m["epochs_completed"] == 2
    assert [json.loads(x)["epoch"] for x in (run / "epochs.jsonl").read_text().splitlines()] == [1, 2]


def test_a_torn_runs_jsonl_is_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench-search", "--benchmark", "nasbench201:cifar10", "--strategies", "random", "--budget-seconds",
            "2000", "--quiet", "--out", str(tmp_path)]
    assert main([*args, "--runs", "1"]) == 0
    path = tmp_path / "runs.jsonl"
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[1][:40])  # a second run's line torn by a full disk
    capsys.readouterr()
    assert main([*args, "--runs", "2", "--resume"]) == 0
    assert "torn last line" in capsys.readouterr().err
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[:2] == whole.splitlines()
    assert [json.loads(x)["run"] for x in lines[1:]] == [0, 1]


# -- full disk, broken pipe ----------------------------------------------------------------------

def test_a_full_disk_in_torch_save_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def full(obj: object, f: object, *a: object, **k: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    monkeypatch.setattr(rundir.torch, "save", full)
    rc = main([*ARGS, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"No space left on device: {tmp_path / 'run' / 'best.pt'}" in err
    assert not list((tmp_path / "run").glob(".*tmp*"))


def test_a_full_disk_in_a_write_is_one_line_with_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def full(self: Path, *a: object, **k: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DiskFull) as e:
        atomic_text(tmp_path / "a.json", "{}")
    assert str(e.value) == f"No space left on device: {tmp_path / 'a.json'}"
    monkeypatch.undo()

    def command(args: object) -> int:  # e.g. an SQLite write of a search
        raise DiskFull(errno.ENOSPC, "No space left on device", str(tmp_path / "study.db"))

    monkeypatch.setattr("effnas.experiments.cli.commands.models.run_list", command)  # bound at registration
    line = one_line_error(capsys, main(["models", "list"]), code=1)
    assert f"No space left on device: {tmp_path / 'study.db'}" in line


class _ClosedPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_closed_pipe_ends_quietly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    rc = main(["models", "list"])
    monkeypatch.undo()
    assert rc == 1 and capsys.readouterr().err == ""


def test_a_full_disk_in_a_study_database_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    named = study.name_full_disk

    def limited(engine: Any, path: str) -> None:  # SQLite's page limit: SQLITE_FULL, as a full disk gives
        named(engine, path)
        event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA max_page_count = 1"))
        engine.dispose()

    monkeypatch.setattr(study, "name_full_disk", limited)
    db = tmp_path / "study.db"
    rc = main(["search", "--space", "tiny", "--trainer", "surrogate", "--quiet", "--strategy", "random", "--trials",
               "200", "--storage", f"sqlite:///{db}", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"effnas: error: No space left on device: {db}")


# -- files that are not what they should be ----------------------------------------------------------


def test_a_config_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """Windows editors write a UTF-8 byte-order mark; it is not TOML syntax, and not the user's fault."""
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + b'name = "bom"\n[search]\ntrials = 7\n')
    cfg = load_config(p)
    assert (cfg.name, cfg.search.trials) == ("bom", 7)


@pytest.mark.parametrize("args", [["run", "{d}", "--plan"], ["family", "--coefficients", "{d}"],
                                  ["models", "show", "{d}"]])
def test_a_directory_given_as_a_file_is_named_as_such(args: list[str], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "adir.json"  # a directory whose name looks like a file's
    d.mkdir()
    rc = main([a.format(d=d) for a in args])
    assert "is a directory" in one_line_error(capsys, rc)


def test_a_bad_value_inside_a_spec_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "big.json"
    p.write_text(json.dumps({"name": "big", "stages": ["r1_k3_s1_e1_i32_o100000"]}))
    line = one_line_error(capsys, main(["models", "show", str(p)]))
    assert str(p) in line and "out_channels must be <= 65536" in line
