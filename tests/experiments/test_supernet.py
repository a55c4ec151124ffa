"""``effnas supernet train`` and the ``supernet`` estimator of a search (effnas.experiments.estimators.supernet)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
import torch

from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import load_config
from effnas.experiments.estimators.supernet import SupernetTrainer, load, train_supernet
from effnas.nas.space import get_space
from effnas.search_spaces import NetworkSpec

TRAIN = ["--space", "nano", "--dataset", "shapes", "--data-fraction", "0.2", "--batch-size", "64", "--optimizer",
         "adamw", "--lr", "0.004", "--threads", "1", "--quiet"]


def _cfg(**sets: object):  # type: ignore[no-untyped-def]
    base = {"search.space": "nano", "data.dataset": "shapes", "data.data_fraction": 0.2, "train.batch_size": 64,
            "train.optimizer": "adamw", "train.lr": 0.004, "train.threads": 1, "supernet.epochs": 1, **sets}
    return load_config(None, overrides=[f"{k}={v}" for k, v in base.items()])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("supernet") / "nano"
    train_supernet(_cfg(), out, progress=False)
    return out


def test_supernet_train_writes_a_resumable_supernet(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sn"
    assert main(["supernet", "train", *TRAIN, "--epochs", "1", "--out", str(out)]) == 0
    assert "--estimator supernet:" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "epochs.csv")))
    assert [r["epoch"] for r in rows] == ["1"] and int(rows[0]["subnets"]) == int(rows[0]["images"]) // 64
    assert json.loads((out / "config.json").read_text())["supernet"]["epochs"] == 1
    net, ck = load(out)
    assert ck["epoch"] == 1 and net.space.name == "nano" and net.resolution == 16
    # again without --resume: refused, the supernet kept
    before = (out / "supernet.pt").stat().st_mtime_ns
    assert main(["supernet", "train", *TRAIN, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a supernet" in err[0] and "--resume" in err[0]
    # resumed with other settings: refused, naming the key
    assert main(["supernet", "train", *TRAIN, "--epochs", "2", "--lr", "0.002", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "supernet.epochs" in err[0] and "train.lr" in err[0]
    # resumed with the same settings: nothing left to train
    assert main(["supernet", "train", *TRAIN, "--epochs", "1", "--out", str(out), "--resume"]) == 0
    assert (out / "supernet.pt").stat().st_mtime_ns == before


@pytest.mark.slow  # over 10 s: the default suite stays under 10 min (make test-slow runs it)
def test_resume_continues_to_the_same_weights_as_one_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import effnas.experiments.estimators.supernet as sn

    cfg = _cfg(**{"supernet.epochs": 2})
    train_supernet(cfg, tmp_path / "whole", progress=False)
    real = sn._write_epochs

    def killed(path: Path, history: list) -> None:  # dies after epoch 1's checkpoint is written
        real(path, history)
        raise KeyboardInterrupt

    monkeypatch.setattr(sn, "_write_epochs", killed)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(cfg, tmp_path / "cut", progress=False)
    assert load(tmp_path / "cut")[1]["epoch"] == 1
    monkeypatch.setattr(sn, "_write_epochs", real)
    train_supernet(cfg, tmp_path / "cut", resume=True, progress=False)
    a, b = load(tmp_path / "whole")[0].net.state_dict(), load(tmp_path / "cut")[0].net.state_dict()
    assert load(tmp_path / "cut")[1]["epoch"] == 2
    assert all(torch.equal(a[k], b[k]) for k in a), "killed after epoch 1 and resumed = trained in one go"


@pytest.mark.slow  # over 8 s: the default suite stays under 10 min (make test-slow runs it)
def test_sandwich_sampling_trains_four_candidates_per_step_and_other_weights(tmp_path, trained: Path) -> None:
    out = tmp_path / "sw"
    m = train_supernet(_cfg(**{"supernet.sampling": "sandwich"}), out, progress=False)
    uniform = list(csv.DictReader(open(trained / "epochs.csv")))[0]
    assert m["subnets"] == 4 * int(uniform["subnets"])
    a, b = load(out)[0].net.state_dict(), load(trained)[0].net.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if k.endswith("weight"))


def test_a_search_ranks_candidates_by_inherited_weights(tmp_path, trained: Path) -> None:
    out = tmp_path / "s"
    assert main(["search", "--space", "nano", "--dataset", "shapes", "--estimator", f"supernet:{trained}",
                 "--strategy", "random", "--trials", "4", "--set", "train.batch_size=32", "--calibration-batches", "3",
                 "--quiet", "--out", str(out)]) == 0
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    trials = [t for t in study.trials if t.user_attrs["status"] == "completed"]
    assert len(trials) == 4
    est = SupernetTrainer(str(trained), space=get_space("nano"), calibration_batches=3)  # type: ignore[arg-type]
    conf = {"dataset": "shapes", "seed": 0, "val_fraction": 0.1, "data_fraction": 1.0, "batch_size": 32}
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert "accuracy" not in rows[0] and "proxy_score" not in rows[0]  # an estimate: a score, not an accuracy
    for r in rows:
        acc = est.evaluate(NetworkSpec.from_json(r["spec"]), conf)
        assert float(r["score"]) == pytest.approx(acc), "the trial's score is the inherited network's accuracy"
    assert len({r["score"] for r in rows}) > 1
    label = json.loads((out / "pareto.json").read_text())["label"]
    assert label == "supernet score (validation accuracy with inherited weights)"
    m = est({**conf, "model": json.loads(rows[0]["spec"])})
    assert m["calibration_images"] == 96 and m["status"] == "completed"
    m5 = SupernetTrainer(str(trained), calibration_batches=5)({**conf, "model": json.loads(rows[0]["spec"])})
    assert m5["calibration_images"] == 160


@pytest.mark.slow  # over 8 s: the default suite stays under 10 min (make test-slow runs it)
def test_a_supernet_prefilter_trains_only_the_best_candidates(tmp_path, trained: Path) -> None:
    out = tmp_path / "pf"
    assert main(["search", "--space", "nano", "--dataset", "shapes", "--trainer", "surrogate", "--prefilter",
                 f"supernet:{trained}", "--keep", "0.5", "--strategy", "random", "--trials", "3", "--set",
                 "train.batch_size=32", "--quiet", "--out", str(out)]) == 0
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    statuses = [t.user_attrs["status"] for t in study.trials]
    assert statuses.count("completed") == 3 and "filtered" in statuses
    assert all(0 < t.user_attrs["proxy_score"] <= 1 for t in study.trials), "the supernet's accuracy is the score"


def test_the_search_trains_its_own_supernet(tmp_path) -> None:
    out = tmp_path / "own"
    args = ["search", "--space", "nano", "--dataset", "shapes", "--estimator", "supernet", "--strategy", "random",
            "--trials", "2", "--set", "supernet.epochs=1", "--set", "data.data_fraction=0.1", "--set",
            "train.threads=1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    assert load(out / "supernet")[1]["epoch"] == 1
    assert len(list(csv.DictReader(open(out / "trials.csv")))) == 2


@pytest.mark.parametrize(("args", "needle"), [
    (["--space", "tiny"], "holds space 'nano', the search samples 'tiny'"),
    (["--space", "nano", "--resolution", "24"], "trained at 16 px"),
    (["--space", "nano", "--seed", "3"], "the validation images must be the supernet's"),
    (["--space", "nasbench201", "--dataset", "cifar10"], "is a benchmark table"),
])
def test_mismatched_supernets_are_one_line_errors(tmp_path, trained: Path, capsys: pytest.CaptureFixture[str],
                                                  args: list[str], needle: str) -> None:
    cmd = ["search", "--dataset", "shapes", "--estimator", f"supernet:{trained}", "--trials", "1", "--quiet",
           "--out", str(tmp_path / "o"), *args]
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("effnas: error: ") and needle in err[0], err


def test_a_missing_supernet_or_space_without_mbconv_is_a_one_line_error(tmp_path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--space", "nano", "--dataset", "shapes", "--estimator", f"supernet:{tmp_path / 'none'}",
                 "--trials", "1", "--quiet", "--out", str(tmp_path / "o")]) == 2
    assert "no supernet at" in capsys.readouterr().err
    assert main(["supernet", "train", "--space", "nasbench201", "--dataset", "shapes", "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "needs an MBConv space" in capsys.readouterr().err


def test_a_search_stopped_while_its_supernet_trains_resumes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import effnas.experiments.estimators.supernet as sn

    out = tmp_path / "own"
    args = ["search", "--space", "nano", "--dataset", "shapes", "--estimator", "supernet", "--strategy", "random",
            "--trials", "2", "--set", "supernet.epochs=2", "--set", "data.data_fraction=0.1", "--set",
            "train.threads=1", "--quiet", "--out", str(out)]
    real = sn._write_epochs

    def killed(path: Path, history: list) -> None:
        real(path, history)
        raise KeyboardInterrupt

    monkeypatch.setattr(sn, "_write_epochs", killed)
    assert main(args) == 130  # Ctrl-C: finished results kept
    assert load(out / "supernet")[1]["epoch"] == 1 and not (out / "study.db").exists()
    monkeypatch.setattr(sn, "_write_epochs", real)
    assert main(args) == 2, "without --resume the supernet is kept, not retrained"
    assert main([*args, "--resume"]) == 0
    assert load(out / "supernet")[1]["epoch"] == 2
    assert len(list(csv.DictReader(open(out / "trials.csv")))) == 2


def test_the_estimator_survives_pickling_as_for_a_ray_task(trained: Path) -> None:
    import pickle

    import effnas.experiments.estimators.supernet as sn

    est = SupernetTrainer(str(trained), space=get_space("nano"), calibration_batches=2)  # type: ignore[arg-type]
    conf = {"dataset": "shapes", "seed": 0, "val_fraction": 0.1, "batch_size": 32, "eval_batch_size": 256}
    spec = load(trained)[0].spec({})
    a = est.evaluate(spec, conf)
    assert sn._STATE, "the process keeps the supernet and its images"
    sn._STATE.clear()
    b = pickle.loads(pickle.dumps(est)).evaluate(spec, conf)
    assert a == b


@pytest.mark.parametrize(("sets", "needle"), [
    (["train.ema=0.99"], "does not use train.ema = 0.99"),
    (["train.dropout=0.3", "train.accumulate=2"], "train.dropout = 0.3, train.accumulate = 2"),
    (["train.progressive_stages=2", "train.progressive_min_size=8"],
     "train.progressive_stages = 2, train.progressive_min_size = 8"),
    (["supernet.sandwich_random=3"], "supernet.sandwich_random acts with supernet.sampling = 'sandwich'"),
])
def test_recipe_keys_a_supernet_cannot_honour_are_one_line_errors(tmp_path, capsys: pytest.CaptureFixture[str],
                                                                  sets: list[str], needle: str) -> None:
    extra = [a for s in sets for a in ("--set", s)]
    assert main(["supernet", "train", *TRAIN, "--epochs", "1", *extra, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "x" / "supernet.pt").exists()
