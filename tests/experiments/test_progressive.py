"""Progressive learning (train.progressive_*, EfficientNetV2 Algorithm 1 / Table 6): the stages' epochs, image
sizes and regularisation; what each stage trains with on the in-memory and the streamed path; resume in the
middle of a stage; the keys as config (TOML, --set, one-line errors)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from effnas.experiments.config.progressive import Stage, stage_at, stages
from effnas.experiments.config.schema import JobConfig, TrainConfig, load_config
from effnas.experiments.data import augment
from effnas.experiments.pipeline import plan
from effnas.experiments.train.distributed import Context
from effnas.experiments.train.loop import check_stage, train
from effnas.experiments.train.steps import epoch as epoch_mod
from effnas.experiments.train.steps import setup as setup_mod
from effnas.search_spaces.common.errors import UserError

#: tiny on digits at 16 px in 3 stages of one epoch each: 8, 12, 16 px (about 2 s).
PROGRESSIVE: dict[str, Any] = {"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 3, "batch_size": 64,
                               "quiet": True, "threads": 1, "data_fraction": 0.2, "progressive_stages": 3,
                               "progressive_min_size": 8, "progressive_dropout": (0.1, 0.3),
                               "progressive_mixup": (0.0, 0.4)}


def test_table_6_efficientnetv2_s_in_four_stages() -> None:
    """V2-S (Table 6; 350 epochs in 4 stages, Section 5.1): image 128 -> 300, RandAugment 5 -> 15, dropout
    0.1 -> 0.3, mixup 0 -> 0; S_i = int(S0 + (Se - S0) i / 3), stage i from epoch i * 350 // 4 + 1."""
    cfg = TrainConfig(epochs=350, augment="randaugment", progressive_stages=4, progressive_min_size=128,
                      progressive_randaug=(5.0, 15.0), progressive_dropout=(0.1, 0.3), progressive_mixup=(0.0, 0.0))
    four = stages(cfg, 300)
    assert [(s.first_epoch, s.last_epoch) for s in four] == [(1, 87), (88, 175), (176, 262), (263, 350)]
    assert [s.size for s in four] == [128, 185, 242, 300]  # 128 + 172 i / 3 = 128, 185.3, 242.7, 300
    assert [s.randaug for s in four] == pytest.approx([5, 25 / 3, 35 / 3, 15])
    assert [s.dropout for s in four] == pytest.approx([0.1, 0.1 + 0.2 / 3, 0.1 + 0.4 / 3, 0.3])
    assert [s.mixup for s in four] == [0, 0, 0, 0]
    assert [stage_at(four, e).index for e in (1, 87, 88, 262, 263, 350)] == [0, 0, 1, 2, 3, 3]


def test_uneven_epochs_one_stage_and_sizes_without_a_minimum() -> None:
    three = stages(TrainConfig(epochs=10, progressive_stages=3, progressive_dropout=(0.0, 0.2)), 40)
    assert [(s.first_epoch, s.last_epoch, s.size) for s in three] == [(1, 3, 40), (4, 6, 40), (7, 10, 40)]
    assert [s.dropout for s in three] == pytest.approx([0.0, 0.1, 0.2]) and three[2].randaug is None
    (only,) = stages(TrainConfig(epochs=5), 32)  # off: the run itself
    assert only == Stage(0, 1, 5, 32)
    with pytest.raises(UserError, match="progressive_min_size = 48 is above the run's resolution 40 px"):
        stages(TrainConfig(epochs=4, progressive_stages=2, progressive_min_size=48), 40)


@pytest.mark.parametrize("keys,needle", [
    ({"progressive_stages": 4}, "progressive_stages = 4 schedules nothing"),
    ({"progressive_min_size": 16}, "train.progressive_min_size needs train.progressive_stages >= 2"),
    ({"progressive_stages": 0}, "progressive_stages must be an integer >= 1"),
    ({"progressive_stages": 40, "progressive_min_size": 16}, "needs a run of at least as many epochs, got 30"),
    ({"progressive_stages": 2, "progressive_dropout": (0.1,)}, "progressive_dropout must be [first, last]"),
    ({"progressive_stages": 2, "progressive_dropout": (0.1, 1.0)}, "progressive_dropout values must be in [0, 1)"),
    ({"progressive_stages": 2, "progressive_randaug": (5.0, 15.0)}, "set train.augment = 'randaugment'"),
    ({"progressive_stages": 2, "augment": "randaugment", "progressive_randaug": (5.0, 30.0)}, "in (0, 30)"),
    ({"progressive_stages": 2, "progressive_mixup": (0.0, -0.2)}, "mixup alphas >= 0"),
    ({"progressive_stages": 2, "progressive_dropout": (0.1, 0.3), "dropout": 0.2}, "give one"),
])
def test_bad_keys_are_one_line_errors(keys: dict[str, Any], needle: str) -> None:
    with pytest.raises(UserError) as e:
        TrainConfig(**keys)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_the_keys_round_trip_through_toml_and_set(tmp_path: Path) -> None:
    cfg = load_config("demo", overrides=["train.progressive_stages=2", "train.progressive_min_size=8",
                                         "train.progressive_dropout=0.1,0.3", "train.progressive_mixup=[0, 0.2]",
                                         "train.augment=randaugment", "train.progressive_randaug=5,15"])
    t = cfg.train
    assert (t.progressive_stages, t.progressive_min_size, t.progressive_dropout, t.progressive_mixup,
            t.progressive_randaug) == (2, 8, (0.1, 0.3), (0.0, 0.2), (5.0, 15.0))
    (tmp_path / "p.toml").write_text(cfg.to_toml())
    assert load_config(tmp_path / "p.toml") == cfg
    with pytest.raises(UserError, match="progressive_stages = 3 needs a run of at least as many epochs, got 2"):
        plan.resolve(cfg.with_overrides(["train.progressive_stages=3"]))  # the demo grid trains 2 epochs


class Seen:
    """What the model of a run sees: per training forward, the input size, the head's dropout and the
    step's mixup; per RandAugment built, its magnitude; eval forwards' sizes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.train: list[tuple[int, float]] = []
        self.eval: set[int] = set()
        self.mixup: list[float] = []
        self.magnitudes: list[float] = []
        build, seen = setup_mod.build_model, self

        def recorded(cfg: JobConfig, spec: Any) -> Any:
            spec, model, init = build(cfg, spec)

            def hook(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
                if module.training:
                    seen.train.append((int(args[0].shape[-1]), module.dropout.p))
                else:
                    seen.eval.add(int(args[0].shape[-1]))
            model.register_forward_pre_hook(hook)
            return spec, model, init

        call, init = epoch_mod.MicroBatches.__call__, augment.PerImagePolicy.__init__

        def micro(mb: Any, batches: Any, tally: Any) -> Any:
            seen.mixup.append(mb.mixup)
            return call(mb, batches, tally)

        def policy(p: Any, name: str, *, magnitude: float | None = None) -> None:
            init(p, name, magnitude=magnitude)
            seen.magnitudes.append(p.magnitude)

        monkeypatch.setattr(setup_mod, "build_model", recorded)
        monkeypatch.setattr(epoch_mod.MicroBatches, "__call__", micro)
        monkeypatch.setattr(augment.PerImagePolicy, "__init__", policy)


def test_each_stage_trains_at_its_size_and_regularisation_and_evaluates_at_the_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Seen(monkeypatch)
    keys = {**PROGRESSIVE, "augment": "randaugment", "progressive_randaug": (5.0, 15.0), "data_fraction": 0.05,
            "batch_size": 32}
    m = train(JobConfig(**keys, out_dir=str(tmp_path)))
    assert m["status"] == "completed" and m["resolution"] == 16
    steps = len(seen.train) // 3  # the same steps per epoch at every size
    assert sorted(set(seen.train)) == [(8, 0.1), (12, pytest.approx(0.2)), (16, 0.3)]
    assert [size for size, _ in seen.train] == [8] * steps + [12] * steps + [16] * steps
    assert seen.mixup == [0.0] * steps + [pytest.approx(0.2)] * steps + [pytest.approx(0.4)] * steps
    assert seen.magnitudes == [5.0, 10.0, 15.0]  # one RandAugment per stage's loader
    assert seen.eval == {16}  # validation and test at the run's resolution
    lines = [json.loads(x) for x in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["image_size"], r["stage_randaug"]) for r in lines] == [(0, 8, 5.0), (1, 12, 10.0),
                                                                                  (2, 16, 15.0)]
    assert [s["image_size"] for s in m["progressive"]] == [8, 12, 16]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["stage"]["stage"] == 2


def test_mixup_mixes_each_micro_batch_with_a_shuffled_copy() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.randn(6, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    mb = epoch_mod.MicroBatches(model, Context(), torch.autocast("cpu", enabled=False), 1, 0.0, mixup=0.4)
    tally = epoch_mod.Tally(torch.device("cpu"))
    torch.manual_seed(5)
    loss = mb(iter([(x, y)]), tally)
    torch.manual_seed(5)  # the same draws: lam ~ Beta(0.4, 0.4), then the permutation
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    with torch.no_grad():
        out = model(lam * x + (1 - lam) * x[perm])
        ce = torch.nn.functional.cross_entropy
        expected = float(lam * ce(out, y) + (1 - lam) * ce(out, y[perm]))
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(6))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert tally.seen == 6


def test_resume_in_the_middle_of_a_stage_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    """4 epochs in 2 stages (8 px for epochs 1-2, 16 px for 3-4) with dropout and mixup schedules; a run
    interrupted after epoch 3 resumes in stage 1 at 16 px with its dropout and mixup, and gives the
    uninterrupted run's numbers."""
    keys = {**PROGRESSIVE, "epochs": 4, "progressive_stages": 2}
    straight = train(JobConfig(**keys, out_dir=str(tmp_path / "a")))

    def crash_after_three(record: dict[str, Any]) -> bool:
        if record["epoch"] == 3:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        train(JobConfig(**keys, out_dir=str(tmp_path / "b")), on_epoch=crash_after_three)
    last = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert (last["epoch"], last["stage"]["stage"], last["stage"]["image_size"]) == (3, 1, 16)
    resumed = train(JobConfig(**keys, out_dir=str(tmp_path / "b"), resume=True))
    a = [json.loads(x) for x in (tmp_path / "a" / "epochs.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b" / "epochs.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["image_size"]) for r in b] == [(1, 8), (2, 8), (3, 16), (4, 16)]
    for ra, rb in zip(a, b, strict=True):
        assert math.isclose(ra["train_loss"], rb["train_loss"], rel_tol=1e-4)
        assert ra["val_accuracy"] == rb["val_accuracy"] and ra["stage_mixup"] == rb["stage_mixup"]
    assert resumed["test_accuracy"] == straight["test_accuracy"]
    assert math.isclose(resumed["test_loss"], straight["test_loss"], rel_tol=1e-4)


def test_a_checkpoint_from_another_schedule_is_refused() -> None:
    two = stages(TrainConfig(epochs=4, progressive_stages=2, progressive_min_size=8), 16)
    check_stage({"epoch": 3, "stage": two[1].to_dict()}, two)
    check_stage({"epoch": 3}, two)  # written before stages were recorded
    with pytest.raises(UserError, match="start the run afresh"):
        check_stage({"epoch": 3, "stage": two[0].to_dict()}, two)


def test_the_streamed_path_trains_each_stage_at_its_size(cifar10_small: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Real CIFAR-10 JPEG files streamed (data.path = stream): 16 px then 32 px, validation at 32."""
    seen = Seen(monkeypatch)
    m = train(JobConfig(model="tiny", dataset=f"cifar10:{cifar10_small}", path="stream", loader_workers=0,
                        resolution=32, epochs=2, batch_size=64, data_fraction=0.3, quiet=True, threads=1,
                        progressive_stages=2, progressive_min_size=16, out_dir=str(tmp_path)))
    assert m["status"] == "completed" and m["data_pipeline"]["path"] == "streaming"
    assert [size for size, _ in seen.train] == [16] * (len(seen.train) // 2) + [32] * (len(seen.train) // 2)
    assert seen.eval == {32}
