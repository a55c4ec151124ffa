"""Every config key is live: setting it to another valid value changes what some run trains with.

The walk covers the whole schema (every field of every section, nested ones included): for each
key it sets a non-default value on a small context config and compares
``effnas.experiments.pipeline.plan.resolve`` (the search's settings and the per-run trainer config of every grid
candidate, family member and backbone network, which the stages use as they are) before and
after. A key that changes nothing fails the test, naming the key. Since that compares plan's
copies of ``[data]`` / ``[train]``, a tiny run also records which keys the trainer itself reads.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest

from effnas.experiments.config.schema import DataConfig, ExperimentConfig, JobConfig, TrainConfig, load_config
from effnas.experiments.config.sections import field_types, is_section
from effnas.experiments.pipeline import plan
from effnas.experiments.train import loop as training
from effnas.search_spaces.latency_table import LatencyTable

#: A latency table file for search.latency_table (its entries do not matter to a plan: an empty one).
TABLE = str(LatencyTable().save(Path(tempfile.mkdtemp(prefix="effnas-walk-")) / "latency.json"))

#: Values for keys whose generic change would be invalid or say nothing.
SPECIAL: dict[str, Any] = {
    "name": "other", "description": "other words",
    "data.dataset": "digits", "data.resolution": 20, "data.crop_pct": 0.8, "data.path": "stream",
    "train.model": "tiny", "train.optimizer": "rmsprop", "train.schedule": "step", "train.augment": "crop_flip",
    "train.recipe": "fast", "train.tta": True,
    "train.device": "cuda", "train.precision": "bf16", "train.lr": 0.01, "train.lr_batch": 256,
    "train.bn_momentum": 0.05, "train.dropout": 0.3, "train.init_from": "weights.pt",
    "train.drop_connect_rate": 0.1, "train.max_minutes": 5.0, "train.track": "none",
    "search.latency_runtime": "onnxruntime", "search.latency_table": TABLE, "search.pruner": "asha",
    "search.space": "tiny", "search.strategy": "tpe", "search.cost": "latency", "search.mode": "pareto",
    "search.constraint": "hard", "search.trainer": "surrogate", "search.estimator": "proxy:synflow",
    "search.prefilter": "proxy:synflow", "search.storage": "sqlite:////tmp/other.db",
    "search.study": "other", "search.resolution": 20, "search.noise_floor": 0.05, "search.train.warmup_epochs": 0.3,
    "search.train.batch_size": 32, "search.v": -0.1, "search.target_params": 1e6,
    "grid.target": 2.2, "grid.step": 0.1, "grid.seeds": (0, 1), "grid.depth_rounding": "ceil",
    "grid.cost_tolerance": 0.01, "grid.rungs": 1, "grid.budget_epochs": 6, "grid.rule": "fast",
    "family.phis": (0, 1, 2), "family.seeds": (0, 1, 2), "family.baseline_phis": (1,), "family.dropout": (0.2, 0.5),
    "family.depth_rounding": "ceil", "family.cost_tolerance": 0.01, "family.official": True, "family.epochs": 7,
    "family.rule": "fast:0.8", "family.latency_runtime": "onnxruntime", "family.rules": ("resnet-rs",),
    "backbones.models": ("mobilenet_v2", "resnet18"), "backbones.epochs": 5, "backbones.resolution": 24,
    "run.out": "runs/other", "run.ray_address": "127.0.0.1:6390", "run.cpus_per_trial": 1.0,
    "run.gpus_per_trial": 0.5, "supernet.sampling": "sandwich",
    "train.progressive_min_size": 8, "train.progressive_dropout": (0.1, 0.3), "train.progressive_randaug": (5.0, 15.0),
    "train.progressive_mixup": (0.0, 0.2),
}

#: Keys that only act together with others: the walk sets these first, on both sides of the comparison.
WITH: dict[str, dict[str, Any]] = {
    "search.latency_runtime": {"search.cost": "latency", "search.target": 5.0},
    "search.latency_table": {"search.cost": "latency", "search.target": 5.0, "run.workers": 1},
    "search.prefilter_keep": {"search.prefilter": "proxy:synflow"},
    "search.target_params": {"search.v": -0.05},
    "train.sync_bn": {"train.devices": 2},
    # the rungs of successive halving (the demo grid: 3 networks, 2 epochs; rung 0 costs 6 epochs)
    "grid.eta": {"grid.halving": True},
    "grid.rungs": {"grid.halving": True},
    "grid.budget_epochs": {"grid.halving": True},
    # [supernet] acts on a search that evaluates candidates with a supernet (its own: "supernet")
    "supernet.epochs": {"search.estimator": "supernet"},
    "supernet.sampling": {"search.estimator": "supernet"},
    "supernet.sandwich_random": {"search.estimator": "supernet", "supernet.sampling": "sandwich"},
    "supernet.calibration_batches": {"search.estimator": "supernet:runs/supernet"},
    # progressive learning: stages with something scheduled (each key alone is refused); 3 stages need 3 epochs
    "train.progressive_stages": {"grid.epochs": 3, "train.progressive_stages": 2,
                                 "train.progressive_dropout": (0.1, 0.2)},
    "train.progressive_min_size": {"train.progressive_stages": 2, "train.progressive_dropout": (0.1, 0.2)},
    "train.progressive_dropout": {"train.progressive_stages": 2, "train.progressive_min_size": 8},
    "train.progressive_randaug": {"train.progressive_stages": 2, "train.progressive_min_size": 8,
                                  "train.augment": "randaugment"},
    "train.progressive_mixup": {"train.progressive_stages": 2, "train.progressive_min_size": 8},
}


def context() -> ExperimentConfig:
    """The demo config with a backbone and a coarse grid: every stage has runs to compare."""
    return load_config("demo").with_values({"backbones.models": ("mobilenet_v2",), "grid.step": 0.2,
                                            "search.estimator": "train", "search.strategy": "random"})


def keys(cls: type = ExperimentConfig, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, hint in field_types(cls).items():
        key = f"{prefix}{name}"
        if is_section(hint):
            out += keys(hint, f"{key}.")
        else:
            out.append((key, hint))
    return out


def other_value(key: str, hint: Any, current: Any) -> Any:
    if key in SPECIAL:
        return SPECIAL[key]
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        return current + 1
    if isinstance(current, float):
        return current * 0.5 if current else 0.1
    raise AssertionError(f"no non-default value for {key} ({hint}, now {current!r}): add it to SPECIAL")


def value_at(cfg: ExperimentConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def snapshot(cfg: ExperimentConfig) -> str:
    return json.dumps(plan.resolve(cfg).to_dict(), sort_keys=True, default=str)


ALL_KEYS = keys()


def test_the_walk_covers_every_section() -> None:
    sections = {k.split(".")[0] for k, _ in ALL_KEYS}
    assert sections == {"name", "description", "data", "train", "search", "grid", "family", "backbones", "supernet",
                        "run"}
    assert any(k.startswith("search.train.") for k, _ in ALL_KEYS)
    assert len(ALL_KEYS) > 80


@pytest.fixture(scope="module")
def baseline() -> tuple[ExperimentConfig, str]:
    ctx = context()
    return ctx, snapshot(ctx)


@pytest.mark.parametrize("key", [k for k, _ in ALL_KEYS])
def test_every_key_changes_what_runs(key: str, baseline: tuple[ExperimentConfig, str]) -> None:
    ctx, before = baseline
    if key in WITH:
        ctx = ctx.with_values(WITH[key])
        before = snapshot(ctx)
    hint = dict(ALL_KEYS)[key]
    new = other_value(key, hint, value_at(ctx, key))
    assert new != value_at(ctx, key)
    changed = ctx.with_values({key: new})
    assert value_at(changed, key) == (tuple(new) if isinstance(new, list) else new)
    assert snapshot(changed) != before, f"{key} = {new!r} changes nothing any run trains with"


#: [data] / [train] keys a tiny CPU run does not read, each with why it cannot decide that run.
#: (Empty: every key is read; a key added here needs its reason.)
NOT_DECIDING: dict[str, str] = {}

#: Functions whose reads of a config are not the trainer using a key: serialisation, validation, comparison.
_NOT_USES = {"to_dict", "__post_init__", "__repr__", "__eq__", "__hash__", "__reduce__", "__getstate__"}


def test_the_trainer_reads_every_data_and_train_key(tmp_path: Path) -> None:
    """Each ``[data]`` / ``[train]`` key reaches the trainer: a tiny run of
    :func:`effnas.experiments.train.loop.train` on a JobConfig that records which of its fields
    the trainer reads (reads by serialisation and validation do not count). The walk above
    compares plan's copies of the keys, which a key no trainer reads would pass."""
    fields = {f.name for f in dataclasses.fields(JobConfig)}
    read: set[str] = set()

    class Recording(JobConfig):
        def __getattribute__(self, name: str) -> Any:
            if name in fields:
                frame = sys._getframe(1)
                while frame.f_code.co_name.startswith("<") and frame.f_back is not None:  # a comprehension's caller
                    frame = frame.f_back
                if frame.f_code.co_name not in _NOT_USES and not frame.f_code.co_filename.endswith(
                        ("dataclasses.py", "copy.py")):
                    read.add(name)
            return super().__getattribute__(name)

    # lr and lr_batch set: lr_batch is read only with an explicit lr (TrainConfig.base_lr)
    m = training.train(Recording(model="tiny", dataset="digits", resolution=16, epochs=1, batch_size=64, lr=0.05,
                                 lr_batch=128, quiet=True, threads=1, out_dir=str(tmp_path)))
    assert m["status"] == "completed"
    keys = [f.name for section in (DataConfig, TrainConfig) for f in dataclasses.fields(section)]
    unread = [k for k in keys if k not in read and k not in NOT_DECIDING]
    assert unread == [], f"[data]/[train] keys the trainer never reads: {unread}"


def test_resolved_runs_are_what_the_configs_say() -> None:
    """Spot checks of the resolution rules (docs/experiments.md)."""
    cfg = context().with_values({"family.dropout": (0.2, 0.5), "train.dropout": 0.1,
                                 "search.train.warmup_epochs": None})
    d = plan.resolve(cfg).to_dict()
    cand = d["search"]["candidate"]
    assert cand["epochs"] == cfg.search.train.epochs and cand["warmup_epochs"] == pytest.approx(0.1 * cand["epochs"])
    assert cand["dropout"] == 0.1  # candidates are alternative bases
    members = [r for r in d["family"]["runs"] if "/members/" in r["out_dir"]]
    assert {r["model"]["dropout"] for r in members} == {0.2, 0.3, 0.4, 0.5}  # the schedule reaches each member
    assert all(r["dropout"] is None and r["drop_connect_rate"] is None for r in d["family"]["runs"])
    bb = d["backbones"]["mobilenet_v2"]["runs"]
    assert bb and all(r["dropout"] is None for r in bb)  # backbones keep their own
    assert {r["epochs"] for r in d["grid"]["runs"]} == {cfg.grid.epochs}
    methods = {m["method"] for m in d["family"]["members"]}
    assert methods == {"compound", "depth", "width", "resolution"}
    phis = {(m["method"], m["phi"]) for m in d["family"]["members"]}
    assert {("depth", p) for p in (1, 2, 3)} <= phis  # a baseline at every phi >= 1


def test_docs_list_every_key() -> None:
    text = (Path(__file__).parents[2] / "docs" / "experiments.md").read_text()
    missing = [k for k, _ in ALL_KEYS if f"`{k.split('.')[-1]}`" not in text]
    assert missing == [], f"docs/experiments.md does not document {missing}"


def test_hints_are_simple() -> None:
    """Every key's type is one the TOML reader understands (the walk would not cover others)."""
    for key, hint in ALL_KEYS:
        origin = typing.get_origin(hint)
        assert hint in (int, float, bool, str) or origin is not None, key


def test_latency_without_a_target_is_one_line() -> None:
    cfg = context().with_overrides(["search.cost=latency", "search.target=none"])
    with pytest.raises(ValueError, match="search.cost = 'latency' needs search.target in milliseconds"):
        plan.resolve(cfg)
