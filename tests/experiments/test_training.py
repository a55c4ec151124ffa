from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import effnas.search_spaces as ss
from effnas.experiments.config.recipes import RECIPES
from effnas.experiments.config.schema import JobConfig as TrainConfig
from effnas.experiments.train.loop import train, train_fn
from effnas.experiments.train.optim import RMSpropTF, lr_factor, param_groups
from effnas.experiments.train.steps.setup import bn_momentum_for
from effnas.search_spaces.cost import cost

#: A small, fast run: tiny at 16 px on digits, 3 epochs of 20 steps (about 1 s). One thread: the
#: test machine is shared, and two threads on two busy cores run several times slower than one.
FAST: dict[str, Any] = {"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 3, "batch_size": 64,
                        "quiet": True, "threads": 1}
REQUIRED = {"status", "val_accuracy", "test_accuracy", "params", "macs", "resolution", "num_classes", "train_size",
            "val_size", "test_size", "train_seconds", "images_per_second"}


def test_train_fn_writes_a_complete_run_directory(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    m = train_fn({**FAST, "out_dir": str(tmp_path)}, on_epoch=lambda r: seen.append(r) and False)
    assert REQUIRED <= set(m) and m["status"] == "completed"
    assert m["resolution"] == 16 and m["num_classes"] == 10 and m["train_size"] == 1294
    assert m["params"] == cost(ss.get("tiny", num_classes=10), resolution=16).params
    assert m["val_accuracy"] > 0.6 and m["test_accuracy"] > 0.6  # 10 classes: chance is 0.1
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    lines = [json.loads(x) for x in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert {"epoch", "train_loss", "val_accuracy", "seconds"} <= set(lines[0])
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"] == m["test_accuracy"]
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == TrainConfig.from_dict(
        {**FAST, "out_dir": str(tmp_path)})
    for name in ("last.pt", "best.pt"):
        state = torch.load(tmp_path / name, weights_only=True)
        assert "model" in state
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    model = ss.build(ss.NetworkSpec.from_dict(last["spec"]))
    model.load_state_dict(last["model"])
    assert not list(tmp_path.glob(".*tmp"))

    # A finished run with the same config is returned, not retrained.
    mtime = (tmp_path / "epochs.jsonl").stat().st_mtime_ns
    again = train_fn({**FAST, "out_dir": str(tmp_path), "quiet": False})
    assert again["reused"] and again["test_accuracy"] == m["test_accuracy"]
    assert (tmp_path / "epochs.jsonl").stat().st_mtime_ns == mtime


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = train(TrainConfig(**FAST, out_dir=str(tmp_path / "a")))

    def crash_after_two(record: dict[str, Any]) -> bool:
        if record["epoch"] == 2:
            raise KeyboardInterrupt  # an interrupt right after epoch 2's checkpoint
        return False

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**FAST, out_dir=str(tmp_path / "b")), on_epoch=crash_after_two)
    assert not (tmp_path / "b" / "metrics.json").exists()
    resumed = train(TrainConfig(**FAST, out_dir=str(tmp_path / "b"), resume=True))
    assert resumed["status"] == "completed" and resumed["epochs_completed"] == 3
    a = [json.loads(x) for x in (tmp_path / "a" / "epochs.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b" / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in b] == [1, 2, 3]
    for ra, rb in zip(a, b, strict=True):
        assert math.isclose(ra["train_loss"], rb["train_loss"], rel_tol=1e-4)
        assert ra["val_accuracy"] == rb["val_accuracy"]
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    assert math.isclose(resumed["test_loss"], straight["test_loss"], rel_tol=1e-4)


def test_resume_with_a_different_config_is_refused(tmp_path: Path) -> None:
    cfg = {**FAST, "epochs": 1, "data_fraction": 0.3, "out_dir": str(tmp_path)}
    train_fn({**cfg, "max_epochs": 1})
    with pytest.raises(ValueError, match="different config"):
        train_fn({**cfg, "lr": 0.01, "resume": True})


def test_huge_lr_diverges_without_traceback(tmp_path: Path) -> None:
    m = train_fn({**FAST, "lr": 1e6, "out_dir": str(tmp_path)})
    assert m["status"] == "diverged" and m["diverged_epoch"] == 1
    assert m["val_accuracy"] is None and m["test_accuracy"] is None
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "diverged"


class _OOMNet(ss.Network):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("CPU out of memory: tried to allocate 9.3 GiB\n(a second line)")
        return super().forward(x)


def test_out_of_memory_is_status_oom_naming_the_batch_and_the_fix(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ss, "build", _OOMNet)
    m = train_fn({**FAST, "accumulate": 2, "out_dir": str(tmp_path)})
    assert m["status"] == "oom" and "\n" not in m["error"]
    assert m["error"].startswith("out of memory on cpu at 32 images per device step (train.batch_size 64 = 1 devices "
                                 "x 2 accumulate x 32): raise train.accumulate")
    assert m["error"].endswith("[RuntimeError: CPU out of memory: tried to allocate 9.3 GiB]")
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "oom"


class _DiskNet(ss.Network):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise OSError(28, "No space left on device")
        return super().forward(x)


def test_a_device_or_file_error_is_status_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ss, "build", _DiskNet)
    m = train_fn({**FAST, "out_dir": str(tmp_path)})
    assert m["status"] == "failed" and m["error"] == "OSError: [Errno 28] No space left on device"


class _BuggyNet(ss.Network):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError("forward() got an unexpected keyword argument 'x'")


def test_a_bug_while_training_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only training outcomes become a status; a programming error stops with its traceback."""
    monkeypatch.setattr(ss, "build", _BuggyNet)
    with pytest.raises(TypeError, match="unexpected keyword"):
        train_fn({**FAST, "out_dir": str(tmp_path)})


def test_a_label_outside_the_classes_is_a_data_error_not_a_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out-of-range labels are bad data: a UserError naming their range, not status ``failed``."""
    import dataclasses

    from effnas.experiments.data import datasets
    from effnas.search_spaces.common.errors import UserError

    ds = datasets.load_dataset("digits")
    labels = ds.pool.labels.clone()
    labels[::7] = 12  # digits has 10 classes
    bad = dataclasses.replace(ds, pool=datasets.Split(ds.pool.images, labels))
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: bad)
    with pytest.raises(UserError, match=r"labels run 0\.\.12 but the data set has 10 classes \(0\.\.9\)"):
        train_fn({**FAST, "epochs": 1})


def test_on_epoch_prunes_and_budget_stops() -> None:
    m = train_fn({**FAST, "epochs": 5, "data_fraction": 0.3}, on_epoch=lambda r: r["epoch"] == 1)
    assert m["status"] == "pruned" and m["epochs_completed"] == 1 and m["test_accuracy"] is None
    b = train_fn({**FAST, "epochs": 5, "max_epochs": 1, "data_fraction": 0.3})
    assert b["status"] == "completed" and b["stopped_by"] == "max_epochs" and b["epochs_completed"] == 1


def test_config_validation_and_the_paper_recipe() -> None:
    from effnas.experiments.config.schema import load_config

    with pytest.raises(ValueError, match="unknown key 'job.lrr'"):
        TrainConfig.from_dict({"lrr": 0.1})
    with pytest.raises(ValueError, match="train.optimizer must be one of sgd, adamw, rmsprop, got 'adam'"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="train.epochs must be a finite number > 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="resume needs out_dir"):
        TrainConfig(resume=True)
    cfg = load_config("paper")
    paper = TrainConfig.make(cfg.data, cfg.train)
    assert paper.optimizer == "rmsprop" and paper.base_lr() == pytest.approx(0.256)
    assert TrainConfig(batch_size=64).base_lr() == pytest.approx(0.1)
    assert TrainConfig.from_dict(paper.to_dict()) == paper


def test_schedules_and_rmsprop_tf() -> None:
    kw = {"steps_per_epoch": 10, "epochs": 10, "warmup_epochs": 1.0}
    cos = [lr_factor(s, schedule="cosine", **kw) for s in range(100)]
    assert cos[9] == 1.0 and cos[99] < 0.001 and all(a >= b for a, b in zip(cos[9:], cos[10:], strict=False))
    step = [lr_factor(s, schedule="step", decay_rate=0.5, decay_epochs=2, **kw) for s in range(100)]
    assert step[19] == 1.0 and step[20] == 0.5 and step[99] == 0.5**4
    # TF RMSProp: ms starts at 1, eps inside the sqrt. One step with g = 1, lr 0.1, rho 0.9:
    # ms = 0.9 + 0.1 = 1, update = 0.1 * 1 / sqrt(1 + 1e-3).
    p = torch.nn.Parameter(torch.zeros(1))
    opt = RMSpropTF([p], lr=0.1)
    p.grad = torch.ones(1)
    opt.step()
    assert float(p.detach()) == pytest.approx(-0.1 / math.sqrt(1.001))
    groups = param_groups(ss.build(ss.get("tiny")), 1e-4)
    assert all(t.ndim > 1 for t in groups[0]["params"]) and all(t.ndim <= 1 for t in groups[1]["params"])
    assert groups[1]["weight_decay"] == 0.0


def test_a_one_epoch_run_is_not_all_warm_up() -> None:
    """``effnas train --model tiny --dataset digits --epochs 1`` (10 steps of 128 images) used to end at
    chance (0.100): the 1-epoch default warm-up filled the run, and BatchNorm momentum 0.1 left 35 % of
    the initial running statistics. Now the warm-up is 10 % of the run and the statistics forget their
    start (measured, seeds 0-2: 0.71, 0.68, 0.58)."""
    warmup = RECIPES["default"].warmup
    assert warmup(None, 1) == pytest.approx(0.1) and warmup(None, 50) == 1.0 and warmup(3.0, 50) == 3.0
    assert (1 - bn_momentum_for(0.01, 10)) ** 10 == pytest.approx(math.exp(-10))
    assert TrainConfig().warmup_epochs is None
    m = train_fn({"model": "tiny", "dataset": "digits", "epochs": 1, "quiet": True, "threads": 1, "seed": 2})
    assert m["status"] == "completed" and m["test_accuracy"] > 0.4  # chance: 0.1


def test_ema_bf16_and_grad_clip_options_train() -> None:
    m = train_fn({**FAST, "epochs": 2, "ema": 0.99, "precision": "bf16", "grad_clip": 1.0,
                  "optimizer": "adamw"})
    assert m["status"] == "completed" and m["test_accuracy"] > 0.1


#: A run under an address-space limit in a child process: the CPU allocator really fails.
_LIMITED = """
import json, resource, sys
from effnas.experiments.data import datasets as data
from effnas.experiments.config.schema import JobConfig
from effnas.experiments.train.loop import train
data.load_dataset("digits")
resource.setrlimit(resource.RLIMIT_AS, (2000 * 2**20, 2000 * 2**20))
m = train(JobConfig(model="tiny", dataset="digits", resolution=64, epochs=1, batch_size=1024,
                    accumulate=int(sys.argv[1]), quiet=True, threads=1, eval_batch_size=64))
print(json.dumps({"status": m["status"], "error": m["error"]}))
"""


def _limited_run(accumulate: int) -> dict[str, Any]:
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", _LIMITED, str(accumulate)], env=env, cwd=root, capture_output=True,
                       text=True, timeout=300, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_real_out_of_memory_is_status_oom() -> None:
    """1,024 images of 64 px in one step do not fit in 2 GB of address space."""
    m = _limited_run(1)
    assert m["status"] == "oom"
    assert m["error"].startswith("out of memory on cpu at 1024 images per device step (train.batch_size 1024 = "
                                 "1 devices x 1 accumulate x 1024): raise train.accumulate")
    assert "can't allocate memory" in m["error"] and "\n" not in m["error"]


@pytest.mark.slow
def test_the_named_fix_works_within_the_same_memory() -> None:
    """The same global batch as 16 accumulated micro-batches of 64 trains within the same limit."""
    assert _limited_run(16) == {"status": "completed", "error": None}


def test_an_oom_run_is_shown_by_the_stages_and_fails_its_search_trial(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from effnas.experiments.pipeline.stages import format_failures
    from effnas.nas.objective import Objective
    from effnas.nas.trial import outcome
    from effnas.scaling import Job, run_jobs

    monkeypatch.setattr(ss, "build", _OOMNet)
    table = run_jobs([Job("members/phi0-seed0", ss.get("tiny", num_classes=10, resolution=16), 0)], train_fn,
                     train_config={**FAST, "accumulate": 2}, out_dir=tmp_path)
    text = format_failures(table, "members")
    assert text.startswith("1 of 1 members did not complete:")
    assert "members/phi0-seed0: oom (out of memory on cpu at 32 images per device step" in text
    m = json.loads((tmp_path / "members" / "phi0-seed0" / "metrics.json").read_text())
    state, values, attrs = outcome(Objective(target=1e6), {"macs": 1e6, "params": 1, "latency_ms": None}, m)
    assert state.name == "FAIL" and values is None
    assert attrs["status"] == "oom" and attrs["error"].startswith("out of memory on cpu")
