"""effnas.experiments.train.guard and the bounds it relies on: output paths, memory estimates, locks (live,
stale and nested), safe names, the grid's candidate limit, spec bounds, the Ray address probe."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import effnas.search_spaces as ss
from effnas.experiments.cluster.ray_session import probe_address
from effnas.experiments.train import guard
from effnas.scaling import grid_candidates


def test_out_dir_creates_and_refuses_files_and_long_names(tmp_path: Path) -> None:
    assert guard.out_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is under .* which is a file"):
        guard.out_dir(tmp_path / "f" / "run")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        guard.out_dir(tmp_path / "f")
    with pytest.raises(ValueError, match="300 bytes, longer than the file system's 255"):
        guard.out_dir(tmp_path / ("n" * 300))
    assert not (tmp_path / ("n" * 10)).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_dir_refuses_a_read_only_parent(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            guard.out_dir(ro / "run")
    finally:
        ro.chmod(0o755)


def test_out_file_protects_inputs_directories_and_foreign_files(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    db.write_bytes(b"SQLite format 3\0")
    with pytest.raises(ValueError, match="is the input"):
        guard.out_file(db, protect=(db,))
    with pytest.raises(ValueError, match="is a directory"):
        guard.out_file(tmp_path)
    other = tmp_path / "notes.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="not written by effnas"):
        guard.out_file(other, accept=lambda p: False)
    assert guard.out_file(tmp_path / "new" / "x.json") == tmp_path / "new" / "x.json"


def test_memory_estimate_grows_with_resolution_and_batch_and_refuses_with_the_limit() -> None:
    b0 = ss.get("efficientnet_b0", num_classes=10)
    small = guard.memory_estimate(b0, resolution=128, batch_size=8)
    assert guard.memory_estimate(b0, resolution=256, batch_size=8) > 3 * small
    assert guard.memory_estimate(b0, resolution=128, batch_size=16) > 1.7 * small
    # B0 at 224 px, batch 128: about 10 GB of activations kept for the backward pass
    assert 5e9 < guard.memory_estimate(b0, resolution=224, batch_size=128) < 20e9
    with pytest.raises(ValueError, match=r"needs about [\d,.]+ GB .* more than the .* lower the resolution"):
        guard.check_memory(b0, resolution=8000, batch_size=128)
    assert guard.check_memory(b0, resolution=128, batch_size=8) == small


def test_inputs_below_the_total_stride_are_refused() -> None:
    with pytest.raises(ValueError, match="downsamples its input 32x: a 1 px input .* at least 32 px"):
        guard.check_input(ss.get("efficientnet_b0"), 1)
    guard.check_input(ss.get("tiny"), 16)


def test_spec_bounds_refuse_sizes_that_would_hang() -> None:
    with pytest.raises(ValueError, match="repeats must be <= 1000"):
        ss.decode_block("r1000000000_k3_s11_e1_i16_o16")
    with pytest.raises(ValueError, match="resolution must be <= 8192"):
        ss.get("tiny", resolution=100_000)
    with pytest.raises(ValueError, match="out_channels must be <= 65536"):
        ss.decode_block("r1_k3_s11_e1_i16_o9999999")


def test_grid_candidates_are_bounded() -> None:
    assert len(grid_candidates(step=0.05)) == 111
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="more than 5000 candidates .* coarser --step"):
        grid_candidates(step=0.0001)
    assert time.perf_counter() - t0 < 10


def test_safe_name_keeps_names_inside_a_directory() -> None:
    for bad in ("../../etc/passwd", "/abs", "..", ".hidden", "a\0b", "x" * 300, "", "ü/ö"):
        name = ss.safe_name(bad)
        assert "/" not in name and "\0" not in name and not name.startswith(".") and 0 < len(name) <= 96
    assert ss.safe_name("b0-phi1.5") == "b0-phi1.5"
    assert ss.safe_name("x" * 300) != ss.safe_name("x" * 299)


def test_lock_names_the_owner_is_nested_and_released(tmp_path: Path) -> None:
    with guard.Lock(tmp_path) as lock:
        owner = json.loads((tmp_path / guard.LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with guard.Lock(tmp_path):  # nested in one process: allowed
            pass
        assert lock.path.exists()
    assert not (tmp_path / guard.LOCK_NAME).exists()


def test_a_second_writer_is_refused_naming_the_owner_and_a_dead_owner_is_taken_over(tmp_path: Path,
                                                                                     hold_lock: Any) -> None:
    p = hold_lock(str(tmp_path))
    try:
        with pytest.raises(ValueError, match=f"being written by PID {p.pid} on {socket.gethostname()}"):
            guard.Lock(tmp_path).acquire()
    finally:
        p.kill()
        p.wait()
    with guard.Lock(tmp_path):  # the holder died: its lock is stale
        assert json.loads((tmp_path / guard.LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_from_another_host_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / guard.LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "command": "run",
                                                        "started": "then"}))
    with pytest.raises(ValueError, match="PID 1 on elsewhere .*if that process is gone, delete"):
        guard.Lock(tmp_path).acquire()


def test_study_lock_paths() -> None:
    assert guard.study_lock_path("sqlite:////x/study.db", "s") == Path("/x/.study.db.s.lock")
    assert guard.study_lock_path("/x/s.journal", "../a") == Path("/x/.s.journal._a.lock")
    assert guard.study_lock_path("postgresql://h/db", "s") is None


def test_a_closed_ray_port_fails_at_once_and_a_silent_one_within_the_timeout() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="cannot reach the Ray cluster .* waited up to 30 s"):
        probe_address(f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < 5
    with socket.socket() as srv:  # listening but never answering: refused within the timeout (issue 23)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        with pytest.raises(ValueError, match="does not answer like a Ray cluster .*within 2 s"):
            probe_address(f"127.0.0.1:{srv.getsockname()[1]}", timeout=2)
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        probe_address("nonsense")


def test_a_finished_run_of_another_config_is_kept_not_cleared(tmp_path: Path) -> None:
    from effnas.experiments.config.schema import DataConfig, JobConfig, TrainConfig
    from effnas.experiments.train.loop import train

    data = DataConfig(dataset="digits", data_fraction=0.2)
    recipe = TrainConfig(model="tiny", epochs=1, batch_size=64, threads=1)
    m = train(JobConfig.make(data, recipe, out_dir=str(tmp_path), quiet=True))
    assert m["status"] == "completed"
    before = (tmp_path / "metrics.json").read_text()
    other = JobConfig.make(data, TrainConfig(model="tiny", epochs=2, batch_size=64, threads=1), out_dir=str(tmp_path),
                           quiet=True)
    differs = r"holds a finished run of a different config \(its 'epochs' differs\): choose another --out"
    with pytest.raises(ValueError, match=differs):
        train(other)
    assert (tmp_path / "metrics.json").read_text() == before and (tmp_path / "last.pt").exists()
