from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

import effnas.search_spaces as ss
from effnas.experiments.config import sections
from effnas.experiments.config.choices import ON_DISK_DATASETS
from effnas.experiments.config.schema import (
    CONFIG_DIR,
    ExperimentConfig,
    FamilyConfig,
    JobConfig,
    SearchConfig,
    TrainConfig,
    load_config,
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
    data = sections.anchored(tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text()), CONFIG_DIR)  # spec paths
    def check(node: object, table: dict, where: str) -> None:
        for key, value in table.items():
            got = getattr(node, key)
            if isinstance(value, dict):
                check(got, value, f"{where}{key}.")
            else:
                assert (list(got) if isinstance(got, tuple) else got) == value, f"{where}{key}"

    check(cfg, {k: v for k, v in data.items()}, "")


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
    assert (c.search.target, c.search.cost, c.search.w, c.search.train.epochs) == (400e6, "macs", -0.07, 5)
    assert c.data.dataset.startswith("imagefolder:")
    assert dataclasses.replace(t, batch_size=256).base_lr() == pytest.approx(0.016)
    assert c.backbones.models == ("mobilenet_v1", "mobilenet_v2", "resnet50") and c.family.official


def test_demo_is_small() -> None:
    c = load_config("demo")
    assert c.data.dataset == "shapes" and c.train.model == "efficientnet_nano"
    # the search scores hundreds of candidates with a zero-cost proxy instead of training 8
    assert c.search.estimator.startswith("proxy:") and 100 <= c.search.trials <= 500
    assert c.family.phis == (0, 1, 2, 3) and len(c.family.seeds) == 2
    assert c.run.workers <= 2  # 2 cores: 2 one-thread trials
    assert c.family.single_dimension and c.family.baseline_phis == ()  # a baseline curve per dimension


def test_overrides_parse_by_field_type() -> None:
    c = load_config("demo", overrides=[
        "search.trials=3", "train.lr=1e-3", "family.official=true", "search.strategy=tpe", "family.phis=0,1",
        "backbones.models=resnet18, tiny", "family.seeds=[3]", "train.model=tiny", "run.ray_address=auto",
        "search.train.epochs=2", "grid.seeds=3",
        "data.resolution=24",
        "search.storage=sqlite:///x.db", "grid.phi=2", "data.dataset=cifar10:/data/c10",
    ])
    assert c.search.trials == 3 and c.train.lr == 1e-3 and c.family.official is True and c.search.strategy == "tpe"
    assert c.family.phis == (0, 1) and c.backbones.models == ("resnet18", "tiny") and c.family.seeds == (3,)
    assert c.search.train.epochs == 2 and c.grid.seeds == (0, 1, 2)
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
    ("[backbones]\nmodels = ['a', 2]\n", "backbones.models[1] in demo.toml must be a string, got 2"),
    ("[search.train]\nepocks = 2\n",
     "unknown key 'search.train.epocks' in demo.toml: did you mean 'search.train.epochs'?"),
    ("[family]\nseeds = 0\n", "family.seeds in demo.toml must be a seed count >= 1"),
    ("[train]\nlr = inf\n", "train.lr in demo.toml must be a finite number, got inf"),
    ("search = 3\n", "[search] in demo.toml must be a table"),
    ("[search]\ntrials = -1\n", "search.trials must be a finite number >= 0, got -1 (in demo.toml)"),
    ("[search]\nw = 0.07\n", "search.w must be <= 0"),
    ("[train]\noptimizer = 'lion'\n", "train.optimizer must be one of sgd, adamw, rmsprop, got 'lion'"),
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
    ("search.train.epocks=2", "unknown key 'search.train.epocks' in --set: did you mean 'search.train.epochs'?"),
    ("search.trian.epochs=2", "unknown section 'search.trian'"),
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
    f = FamilyConfig(phis=(0, 2))
    assert f.to_dict()["phis"] == [0, 2] and FamilyConfig.from_dict(f.to_dict()) == f
    with pytest.raises(ValueError, match="unknown key 'search.trails' in config: did you mean 'search.trials'"):
        SearchConfig.from_dict({"trails": 3})
    assert "SECTION" not in SearchConfig().to_dict()


@pytest.mark.parametrize("name", NAMED)
def test_one_job_config_for_the_trainer(name: str) -> None:
    """[data] + [train] are the trainer's config: a job built from them round-trips through the
    trainer's JSON contract unchanged."""
    cfg = load_config(name)
    job = JobConfig.make(cfg.data, cfg.train, seed=3)
    assert JobConfig.from_dict(job.to_dict()) == job
    assert (job.model, job.seed, job.base_lr(), job.ema) == (cfg.train.model, 3, cfg.train.base_lr(), cfg.train.ema)
    with pytest.raises(ValueError, match="unknown key 'job.lrr' in trainer config: did you mean 'job.lr'"):
        JobConfig.from_dict({"lrr": 0.1})


def test_every_choice_is_one_the_trainer_acts_on() -> None:
    """The lists of effnas.experiments.config.choices are the only ones: the code that acts on a
    choice accepts each of them."""
    import torch

    from effnas.experiments.config import choices
    from effnas.experiments.data import augment
    from effnas.experiments.train import optim

    model = torch.nn.Linear(2, 2)
    for name in choices.OPTIMIZERS:
        optim.make_optimizer(name, model, lr=0.1, momentum=0.9, weight_decay=0.0)
    for policy in choices.AUGMENTS:
        augment.make_augment(policy, resolution=16, flip_invariant=True)
    for key, values in (("train.schedule", choices.SCHEDULES), ("train.precision", choices.PRECISIONS),
                        ("train.device", choices.DEVICES), ("train.augment", choices.AUGMENTS),
                        ("train.optimizer", choices.OPTIMIZERS), ("data.path", choices.DATA_PATHS)):
        for value in values:
            ExperimentConfig().with_overrides([f"{key}={value}"])


def test_named_configs_name_real_models_and_datasets() -> None:
    from effnas.experiments.data import datasets as data

    for name in NAMED:
        cfg = load_config(name)
        kind, _, path = cfg.data.dataset.partition(":")
        if path.endswith(data.ARCHIVES):  # parse_ref would unpack it (tests/conftest.py finds the real one)
            assert kind in ON_DISK_DATASETS and path == "../shared/data/cifar10-jpeg.tar.gz"
        else:
            data.parse_ref(cfg.data.dataset)
        for model in (cfg.train.model, *cfg.backbones.models):
            ss.load_spec(model)  # a registered name, or a spec file relative to the project root


def test_rmsprop_settings_reach_the_optimizer() -> None:
    from effnas.experiments.train.optim import make_optimizer

    cfg = load_config("paper", overrides=["train.rmsprop_eps=1e-8", "train.rmsprop_decay=0.95"])
    opt = make_optimizer("rmsprop", ss.build(ss.get("tiny")), lr=0.1, momentum=0.9, weight_decay=0.0,
                         rmsprop_decay=cfg.train.rmsprop_decay, rmsprop_eps=cfg.train.rmsprop_eps)
    assert (opt.param_groups[0]["alpha"], opt.param_groups[0]["eps"]) == (0.95, 1e-8)


def test_a_saved_config_without_a_key_added_since_matches_with_its_default() -> None:
    """`effnas run --resume` compares the saved config.json with the current one section by section:
    a key the saved one lacks (added to the schema later) counts with its default."""
    from effnas.experiments.config.sections import with_defaults

    now = load_config("demo").to_dict()
    saved = {**now, "train": {k: v for k, v in now["train"].items() if k != "sync_bn"}}
    saved.pop("backbones")
    assert saved != now and with_defaults(saved, ExperimentConfig().to_dict()) == now
    other = {**saved, "train": {**saved["train"], "epochs": 99}}
    assert with_defaults(other, ExperimentConfig().to_dict()) != now


def test_a_config_names_its_spec_files_from_its_own_folder(tmp_path, monkeypatch) -> None:
    """Relative spec paths that exist beside the config are taken from there, wherever the command
    runs (the cifar10-cpu preset's backbones); others stay relative to the current directory."""
    import json as _json

    from effnas.experiments.config import load_config

    folder = tmp_path / "study"
    (folder / "specs").mkdir(parents=True)
    spec = load_config("cifar10-cpu").backbones.models[0]
    (folder / "specs" / "net.json").write_text(Path(spec).read_text())
    (folder / "study.toml").write_text('[backbones]\nmodels = ["specs/net.json", "resnet18"]\n'
                                       '[train]\nmodel = "elsewhere.json"\n')
    monkeypatch.chdir(tmp_path)
    cfg = load_config(str(folder / "study.toml"))
    assert cfg.backbones.models[0] == str((folder / "specs" / "net.json").resolve())
    assert cfg.backbones.models[1] == "resnet18" and cfg.train.model == "elsewhere.json"
    assert Path(spec).is_file() and _json.loads(Path(spec).read_text())["name"] == "mobilenet_v2_0.35"
