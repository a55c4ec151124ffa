"""``train.recipe``: a recipe fills the keys a run leaves unset, explicit keys win; the fast recipe's
ingredients (linear schedule, alternating flip with translation, test-time augmentation) do what
docs/training.md says."""

from __future__ import annotations

import pytest
import torch

import effnas.search_spaces as ss
from effnas.experiments.config.recipes import RECIPES, resolve
from effnas.experiments.config.schema import JobConfig, TrainConfig, load_config
from effnas.experiments.data.augment import FlipTranslate, make_augment
from effnas.experiments.train.loop import train_fn
from effnas.experiments.train.steps.epoch import Schedule
from effnas.experiments.train.steps.evaluate import tta_logits
from effnas.scaling.record import read_result
from effnas.scaling.runner import Job, run_jobs
from effnas.search_spaces.common.errors import UserError


def test_the_default_recipe_is_the_old_defaults() -> None:
    r = resolve(TrainConfig())
    assert (r.label_smoothing, r.weight_decay, r.ema, r.schedule, r.tta, r.augment) == (
        0.1, 5e-5, 0.0, "cosine", False, "auto")
    assert TrainConfig(batch_size=256).base_lr() == pytest.approx(0.4)


def test_fast_fills_unset_keys_and_explicit_keys_win() -> None:
    fast = resolve(TrainConfig(recipe="fast"))
    assert (fast.label_smoothing, fast.weight_decay, fast.ema, fast.schedule, fast.tta, fast.augment) == (
        0.2, 5e-4, 0.99, "linear", True, "flip_translate")
    assert TrainConfig(recipe="fast", batch_size=512).base_lr() == pytest.approx(0.4)  # 0.2 per 256, linear in batch
    assert TrainConfig(recipe="fast", lr=0.05).base_lr() == 0.05
    mine = TrainConfig(recipe="fast", label_smoothing=0.0, weight_decay=1e-4, ema=0.0, schedule="cosine", tta=False,
                       augment="crop")
    r = resolve(mine)
    assert (r.label_smoothing, r.weight_decay, r.ema, r.schedule, r.tta, r.augment) == (
        0.0, 1e-4, 0.0, "cosine", False, "crop")
    # through --set, in either order, and a config file's keys (cifar10-cpu sets ema = 0.0: it wins)
    cfg = load_config(None, overrides=["train.label_smoothing=0.05", "train.recipe=fast"])
    assert resolve(cfg.train).label_smoothing == 0.05 and resolve(cfg.train).ema == 0.99
    preset = load_config("cifar10-cpu", overrides=["train.recipe=fast"])
    assert resolve(preset.train).ema == 0.0 and resolve(preset.train).tta
    with pytest.raises(UserError, match="train.recipe must be one of default, fast"):
        TrainConfig(recipe="slow")


def test_fast_warm_up_and_linear_decay() -> None:
    job = JobConfig(recipe="fast", epochs=10)
    s = Schedule.of(job, lr=1.0, steps_per_epoch=10, epochs=10)
    assert s.warmup_epochs == 2.0 and s.schedule == "linear"  # 20 % of the run
    f = [s.factor(i) for i in range(100)]
    assert f[19] == 1.0 and f[59] == pytest.approx(1 - 39 / 80) and f[99] == pytest.approx(1 / 80)
    assert Schedule.of(JobConfig(recipe="fast", epochs=10, warmup_epochs=0.5), lr=1.0, steps_per_epoch=10,
                       epochs=10).warmup_epochs == 0.5


def test_alternating_flip_shows_every_image_both_ways_in_two_epochs() -> None:
    torch.manual_seed(0)
    aug = make_augment("flip_translate", resolution=32, flip_invariant=True, seed=3)
    assert isinstance(aug, FlipTranslate) and aug.pad == 2
    x = torch.rand(200, 3, 32, 32)
    index = torch.arange(200)
    bits = aug.bits(index)
    assert 70 < int(bits.sum()) < 130  # about half start flipped
    no_shift = FlipTranslate(0, flip=True, seed=3)
    e1, e2 = no_shift.indexed(x, index, 1), no_shift.indexed(x, index, 2)
    flipped1 = (e1 == x.flip(-1)).flatten(1).all(1)
    flipped2 = (e2 == x.flip(-1)).flatten(1).all(1)
    assert bool((flipped1 ^ flipped2).all())  # each image flipped in exactly one of two consecutive epochs
    assert torch.equal(FlipTranslate(0, flip=False).indexed(x, index, 1), x)  # digits: no flip
    moved = aug.indexed(x, index, 1)
    assert moved.shape == x.shape and not torch.equal(moved, x)


def test_tta_weights_the_views_as_airbench() -> None:
    """Half the weight on the image, a quarter on each 1-pixel shift (up-left, down-right); with
    ``flip`` each view averaged with its mirror image."""
    x = torch.rand(1, 1, 4, 4)
    p = x[0, 0]

    def pixel(v: torch.Tensor) -> torch.Tensor:  # a "model" that reads the pixel at (1, 1)
        return v[:, :, 1, 1]

    plain = 0.5 * p[1, 1] + 0.25 * p[0, 0] + 0.25 * p[2, 2]
    assert float(tta_logits(pixel, x, flip=False)) == pytest.approx(float(plain))  # type: ignore[arg-type]
    mirrored = 0.25 * (p[1, 1] + p[1, 2]) + 0.125 * (p[0, 0] + p[0, 1]) + 0.125 * (p[2, 2] + p[2, 3])
    assert float(tta_logits(pixel, x, flip=True)) == pytest.approx(float(mirrored))  # type: ignore[arg-type]


def test_a_fast_run_reports_tta_beside_plain_accuracy() -> None:
    m = train_fn({"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 2, "batch_size": 64,
                  "quiet": True, "threads": 1, "recipe": "fast"})
    assert m["status"] == "completed"
    assert m["test_accuracy"] > 0.3 and m["test_accuracy_tta"] > 0.3  # chance: 0.1
    assert m["test_accuracy_tta"] != m["test_accuracy"] or m["test_loss_tta"] != m["test_loss"]
    assert "test_accuracy_tta" not in train_fn({"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 1,
                                                "batch_size": 64, "quiet": True, "threads": 1})
    assert RECIPES["fast"].tta


def test_a_family_table_carries_tta_and_a_resumed_one_reads_it_back(tmp_path) -> None:
    """test_accuracy_tta reaches the result table (effnas family's family.csv) beside test_accuracy, and a
    resumed table, built from the finished runs' result.json without training, has the same value."""
    jobs = [Job("a", ss.get("tiny"), seed=0)]
    config = {"dataset": "digits", "resolution": 16, "epochs": 1, "batch_size": 64, "quiet": True, "threads": 1,
              "recipe": "fast"}
    first = run_jobs(jobs, train_fn, train_config=config, out_dir=tmp_path)
    stored = read_result(tmp_path / "a")
    assert stored is not None and first["test_accuracy_tta"].iloc[0] == stored["metrics"]["test_accuracy_tta"]
    assert 0.1 < first["test_accuracy_tta"].iloc[0] <= 1

    def refuse(config, *, on_epoch=None):  # a resumed table must not train again
        raise AssertionError("trained a finished run")

    again = run_jobs(jobs, refuse, train_config=config, out_dir=tmp_path, resume=True)
    assert again["test_accuracy_tta"].iloc[0] == first["test_accuracy_tta"].iloc[0]
