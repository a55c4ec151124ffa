"""Storage files of other programs (issue 23): ``--storage`` pointing at an existing file that holds no
Optuna study is refused before anything is written to it, with one line naming the file and the fix."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from effnas.experiments.cli.main import main
from effnas.nas.study import check_storage_file, open_storage
from tests.experiments.test_fuzz import one_line_error

SEARCH = ["search", "--space", "tiny", "--trainer", "surrogate", "--target-macs", "1.5M", "--quiet", "--trials", "1"]


def _foreign(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A file of another program and the --storage URL that names it."""
    if kind == "journal":
        p = tmp_path / "notes.journal"
        p.write_text("remember the milk\n")
        return p, str(p)
    if kind == "jsonl":
        p = tmp_path / "app.log"
        p.write_text('{"level": "info", "msg": "started"}\n{"level": "info", "msg": "stopped"}\n')
        return p, str(p)
    if kind == "journal-url":
        p = tmp_path / "events.txt"
        p.write_text('{"event": 1}\n')
        return p, f"journal:{p}"
    p = tmp_path / "data.db"
    if kind == "db":
        p.write_bytes(b"PK\x03\x04 a zip, not a database" * 4)
    else:  # an SQLite database of another program
        with sqlite3.connect(p) as con:
            con.execute("CREATE TABLE notes (text TEXT)")
            con.execute("INSERT INTO notes VALUES ('keep me')")
        con.close()
    return p, f"sqlite:///{p}"


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["journal", "jsonl", "journal-url", "db", "sqlite"])
@pytest.mark.parametrize("command", ["search", "export"])
def test_a_foreign_storage_file_is_refused_before_any_write(kind: str, command: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path, url = _foreign(tmp_path, kind)
    before = _digest(path), path.stat().st_mtime_ns
    argv = (SEARCH + ["--storage", url, "--out", str(tmp_path / "s")] if command == "search"
            else ["export", "--storage", url, "--trial", "0", "-o", str(tmp_path / "spec.json")])
    capsys.readouterr()
    line = one_line_error(capsys, main(argv))
    assert f"storage file {str(path)!r} holds no Optuna study" in line and "give a new path" in line, line
    assert (_digest(path), path.stat().st_mtime_ns) == before
    assert not (tmp_path / "spec.json").exists()


def test_storage_files_effnas_wrote_or_empty_ones_are_accepted(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "a.journal")):
        assert main(SEARCH + ["--storage", url, "--out", str(tmp_path / "s")]) == 0
        check_storage_file(url)  # holds the study now
        assert main(SEARCH + ["--storage", url, "--out", str(tmp_path / "s"), "--resume", "--trials", "2"]) == 0
    (tmp_path / "empty.db").touch()
    (tmp_path / "empty.journal").touch()
    open_storage(f"sqlite:///{tmp_path / 'empty.db'}")
    open_storage(str(tmp_path / "empty.journal"))


# -- output outside --out: one notice line, no error ------------------------------------------------

def _notes(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("effnas: note: ")]


def test_a_config_storage_outside_out_is_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere" / "study.db"
    elsewhere.parent.mkdir()
    capsys.readouterr()
    loud = [a for a in SEARCH if a != "--quiet"]  # --quiet drops notes
    assert main(loud + ["--set", f"search.storage=sqlite:///{elsewhere}", "--out", str(tmp_path / "s")]) == 0
    notes = _notes(capsys.readouterr().err)
    assert notes == [f"effnas: note: search.storage writes to {str(elsewhere)!r}, outside --out "
                     f"{str(tmp_path / 's')!r}"], notes
    inside = tmp_path / "s2" / "mine.db"
    assert main(loud + ["--set", f"search.storage=sqlite:///{inside}", "--out", str(tmp_path / "s2")]) == 0
    assert main(loud + ["--storage", str(tmp_path / "typed.journal"), "--out", str(tmp_path / "s3")]) == 0
    assert _notes(capsys.readouterr().err) == []  # inside --out, or a path typed on the command line


def test_run_notes_run_out_and_storage_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = work / "exp.toml"
    cfg.write_text('[data]\ndataset = "cifar10:/nonexistent"\n[search]\ntrials = 2\nstorage = "sqlite:///../s.db"\n'
                   '[run]\nout = "../away"\n')
    capsys.readouterr()
    rc = main(["run", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "cifar10 directory '/nonexistent' does not exist" in err.splitlines()[-1], err
    assert _notes(err) == [f"effnas: note: run.out writes to {str(tmp_path / 'away')!r}, outside the current "
                           "directory",
                           f"effnas: note: search.storage writes to {str(tmp_path / 's.db')!r}, outside --out "
                           "'../away'"], err
    main(["run", str(cfg), "--out", "here"])
    assert _notes(capsys.readouterr().err) == [f"effnas: note: search.storage writes to {str(tmp_path / 's.db')!r}, "
                                               "outside --out 'here'"]
