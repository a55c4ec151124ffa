from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

import search_spaces as ss
from experiments.config import (
    AUGMENTS,
    CONFIG_DIR,
    ExperimentConfig,
    FamilyConfig,
    SearchConfig,
    TrainConfig,
    load_config,
    trainer_config,
)

NAMED = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def test_named_configs_exist() -> None:
    assert {"demo", "cifar10", "paper"} <= set(NAMED)


@pytest.mark.parametrize("name", NAMED)
def test_round_trip(name: str) -> None:
    cfg = load_config(name)
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    assert ExperimentConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg
    # Every key of the file is a field (no silently ignored keys), and the file sets what it says.
    data = tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text())
    for sec in ("data", "train", "search", "grid", "family", "run"):
        for key, value in data.get(sec, {}).items():
            got = getattr(getattr(cfg, sec), key)
            assert (list(got) if isinstance(got, tuple) else got) == value, f"{sec}.{key}"


def test_defaults_round_trip_through_a_file(tmp_path: Path) -> None:
    cfg = ExperimentConfig()
    path = tmp_path / "x.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path) == cfg


def test_paper_recipe() -> None:
    """EfficientNet §5.2 and §4 (REFERENCE.md, training recipe)."""
    c = load_config("paper")
    t = c.train
    assert (t.optimizer, t.rmsprop_decay, t.momentum, t.weight_decay) == ("rmsprop", 0.9, 0.9, 1e-5)
    assert (t.lr, t.lr_batch, t.schedule, t.decay_rate, t.decay_epochs) == (0.256, 4096, "step", 0.97, 2.4)
    assert (t.warmup_epochs, t.augment, t.label_smoothing) == (5.0, "autoaugment", 0.1)
    assert t.bn_momentum is None and ss.get(t.model).bn_momentum == 0.01  # the spec's own: TF 0.99
    assert t.drop_connect_rate == pytest.approx(1 - 0.8) and t.dropout == 0.2
    assert (c.family.dropout_for(0), c.family.dropout_for(7)) == (0.2, 0.5)
    assert (c.search.target_macs, c.search.w) == (400e6, -0.07)
    assert c.data.dataset.startswith("imagefolder:")
    assert dataclasses.replace(t, batch_size=256).scaled_lr == pytest.approx(0.016)


def test_demo_is_small() -> None:
    c = load_config("demo")
    assert c.data.dataset == "shapes" and c.train.model == "efficientnet_nano"
    assert 8 <= c.search.trials <= 12 and c.search.epochs <= 2
    assert c.family.phis == (0, 1, 2, 3) and len(c.family.seeds) == 2
    assert c.search.workers == 1 and c.run.workers <= 2  # 2 cores: in-process search, 2 one-thread trials


def test_overrides_parse_by_field_type() -> None:
    c = load_config("demo", overrides=[
        "search.trials=3", "train.lr=1e-3", "family.official=true", "search.strategy=tpe", "family.phis=0,1",
        "family.backbones=resnet18, tiny", "family.seeds=[3]", "train.model=tiny", "run.ray_address=auto",
        "data.resolution=24",
        "search.storage=sqlite:///x.db", "grid.phi=2", "data.dataset=cifar10:/data/c10",
    ])
    assert c.search.trials == 3 and c.train.lr == 1e-3 and c.family.official is True and c.search.strategy == "tpe"
    assert c.family.phis == (0, 1) and c.family.backbones == ("resnet18", "tiny") and c.family.seeds == (3,)
    assert c.run.ray_address == "auto" and c.data.resolution == 24 and c.search.storage == "sqlite:///x.db"
    assert c.grid.phi == 2.0 and isinstance(c.grid.phi, float) and c.data.dataset == "cifar10:/data/c10"
    assert load_config("paper", overrides=["data.resolution=none"]).data.resolution is None


@pytest.mark.parametrize("text,message", [
    ("[search]\ntrails = 10\n", "unknown key 'search.trails' in demo.toml: did you mean 'search.trials'?"),
    ("[serch]\ntrials = 10\n", "unknown section 'serch' in demo.toml: did you mean 'search'?"),
    ("nmae = 'x'\n", "unknown key 'nmae' in demo.toml: did you mean 'name'?"),
    ("[search]\ntrials = '10'\n", "search.trials in demo.toml must be an integer, got '10'"),
    ("[search]\ntrials = 1.5\n", "search.trials in demo.toml must be an integer, got 1.5"),
    ("[family]\nofficial = 1\n", "family.official in demo.toml must be true or false, got 1"),
    ("[family]\nphis = 3\n", "family.phis in demo.toml must be an array"),
    ("[family]\nbackbones = ['a', 2]\n", "family.backbones[1] in demo.toml must be a string, got 2"),
    ("search = 3\n", "[search] in demo.toml must be a table"),
    ("[search]\ntrials = 0\n", "search.trials must be > 0, got 0 (in demo.toml)"),
    ("[search]\nw = 0.07\n", "search.w must be <= 0"),
    ("[train]\noptimizer = 'lion'\n", "train.optimizer must be one of sgd, rmsprop, adamw, got 'lion'"),
    ("[family]\ndropout = [0.2]\n", "family.dropout must be [first, last]"),
    ("[search\n", "malformed TOML in demo.toml"),
])
def test_bad_files_give_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "demo.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        load_config(path)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("override,message", [
    ("search.trails=10", "unknown key 'search.trails' in --set: did you mean 'search.trials'?"),
    ("serch.trials=10", "unknown section 'serch'"),
    ("search.trials=ten", "search.trials in --set must be an integer, got 'ten'"),
    ("search.trials", "must look like section.key=value"),
    ("trials=3", "must look like section.key=value"),
    ("search.study=none", ""),  # a non-optional string: the literal text "none"
    ("search.trials=none", "search.trials in --set must be an integer, got 'none'"),
])
def test_bad_overrides(override: str, message: str) -> None:
    if not message:
        assert load_config("demo", overrides=[override]).search.study == "none"
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        load_config("demo", overrides=[override])


def test_missing_config_names_the_choices() -> None:
    with pytest.raises(ValueError, match="config 'nope' does not exist: give a TOML path or one of .*demo"):
        load_config("nope")


def test_sections_are_frozen_and_validated_directly() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SearchConfig().trials = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="family.phis must be distinct"):
        FamilyConfig(phis=(0, 0))
    with pytest.raises(ValueError, match="train.schedule"):
        TrainConfig(schedule="exponential")
    assert FamilyConfig(phis=(2,), dropout=(0.2, 0.5)).dropout_for(2) == 0.2


def test_section_round_trip_and_unknown_keys() -> None:
    t = TrainConfig(optimizer="rmsprop", lr_batch=4096)
    assert TrainConfig.from_dict(t.to_dict()) == t
    f = FamilyConfig(phis=(0, 2), backbones=("resnet50",))
    assert f.to_dict()["phis"] == [0, 2] and FamilyConfig.from_dict(f.to_dict()) == f
    with pytest.raises(ValueError, match="unknown key 'search.trails' in config: did you mean 'search.trials'"):
        SearchConfig.from_dict({"trails": 3})
    assert "SECTION" not in SearchConfig().to_dict()


@pytest.mark.parametrize("name", NAMED)
def test_trainer_config_is_accepted_by_the_trainer(name: str) -> None:
    """The mapping onto the trainer's TrainConfig (branch train) stays in step with it."""
    training = pytest.importorskip("experiments.training")
    cfg = load_config(name)
    d = trainer_config(cfg, model=cfg.train.model, seed=3, dropout=cfg.family.dropout_for(0))
    t = training.TrainConfig.from_dict(d)
    assert (t.model, t.seed, t.lr, t.ema_decay) == (cfg.train.model, 3, cfg.train.scaled_lr, cfg.train.ema)


def test_choices_match_the_trainer() -> None:
    training = pytest.importorskip("experiments.training")
    from experiments import augment, optim

    assert set(AUGMENTS) == set(augment.POLICIES)
    assert set(optim.OPTIMIZERS) == {"sgd", "rmsprop", "adamw"}
    assert set(optim.SCHEDULES) == {"cosine", "step", "constant"}
    assert set(training.PRECISIONS) == {"auto", "fp32", "bf16", "fp16"}
    assert set(training.DEVICES) == {"auto", "cpu", "cuda"}


def test_named_configs_name_real_models_and_datasets() -> None:
    data = pytest.importorskip("experiments.data")
    for name in NAMED:
        cfg = load_config(name)
        data.parse_ref(cfg.data.dataset)
        for model in (cfg.train.model, *cfg.family.backbones):
            ss.get(model)


def test_trainer_config_rejects_unsupported_rmsprop() -> None:
    cfg = load_config("paper", overrides=["train.rmsprop_eps=1e-8"])
    with pytest.raises(ValueError, match="train.rmsprop_eps = 1e-08 is not supported"):
        trainer_config(cfg, model="efficientnet_b0")
