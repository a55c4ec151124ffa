"""Train a weight-sharing supernet on a data set and evaluate candidates with inherited weights.

``effnas supernet train --space cifar --dataset cifar10:PATH --out DIR`` trains
:class:`effnas.nas.estimators.supernet.Supernet` of ``search.space`` with the ``[train]`` recipe (optimizer, lr,
schedule, augmentation, batch) for ``supernet.epochs`` epochs on ``[data]``: every step draws
one candidate uniformly (``supernet.sampling = uniform``) or the sandwich of the largest, the
smallest and ``supernet.sandwich_random`` random ones with in-place distillation
(``sandwich``). ``DIR`` holds ``supernet.pt`` (weights, optimiser and RNG state after every
epoch: ``--resume`` continues), ``config.json`` (the experiment config) and ``epochs.csv``.

A search evaluates candidates with it via ``--estimator supernet:DIR`` (:class:`SupernetTrainer`):
the candidate's network inherits its slice of the weights, its BatchNorm statistics are
re-estimated on ``supernet.calibration_batches`` training batches, and its accuracy on the
validation split is the trial's ``val_accuracy``, which the search stores as its ``score`` (an
estimate, not the accuracy the candidate reaches trained: :mod:`effnas.nas.measure`). Nothing
trains. The split must be the supernet's own (same data set, seed and validation share), so that
validation images were never trained on.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from effnas.experiments.config.recipes import resolve
from effnas.experiments.config.schema import ExperimentConfig, JobConfig
from effnas.experiments.config.sections import with_defaults
from effnas.experiments.data import datasets as data_mod
from effnas.experiments.estimators.proxy import torch_threads
from effnas.experiments.train.devices import device_for
from effnas.experiments.train.distributed import Context
from effnas.experiments.train.rng import seed_everything
from effnas.experiments.train.rundir import check_weights, load_checkpoint
from effnas.experiments.train.steps.epoch import Batches, Schedule, Tally, Update, train_epoch
from effnas.experiments.train.steps.progress import Progress
from effnas.experiments.train.steps.setup import load_data, loader_for, optimizer_for
from effnas.experiments.train.steps.state import TrainState, restore, snapshot
from effnas.experiments.train.threads import set_threads
from effnas.experiments.weights.convert import read_checkpoint
from effnas.nas import get_space
from effnas.nas.estimators.supernet import Supernet, largest_params, random_params, recalibrate_bn, smallest_params
from effnas.nas.estimators.zerocost import quantile
from effnas.nas.space import SearchSpace
from effnas.scaling.record import unreadable
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_text, atomic_write
from effnas.search_spaces.common.errors import UserError

CHECKPOINT = "supernet.pt"
#: The keys of ``supernet.pt`` a resume reads (an older layout lacks some), and what to do otherwise.
RESUME_KEYS = ("state", "optimizer", "epoch", "history", "rng", "sampler")
RESUME_FIX = "delete it (or the whole --out directory) and train the supernet again, or start without --resume"
CONFIG = "config.json"
EPOCHS = "epochs.csv"


def _space(cfg: ExperimentConfig) -> SearchSpace:
    space = get_space(cfg.search.space)
    if not isinstance(space, SearchSpace):
        raise UserError(f"space {cfg.search.space!r} is a benchmark table of cells: a supernet needs an MBConv space "
                         "(e.g. --space cifar)")
    largest_params(space)  # one line if the space cannot share weights
    return space


def split_key(dataset: str, seed: int, val_fraction: float) -> dict[str, Any]:
    """What decides the training / validation split (stored with the supernet, checked by a search)."""
    return {"dataset": dataset, "seed": seed, "val_fraction": val_fraction}


#: ``[train]`` keys supernet training does not use, with the only value it accepts for each.
UNUSED_TRAIN = {"ema": 0.0, "tta": False, "dropout": None, "drop_connect_rate": None, "bn_momentum": None,
                "max_minutes": None, "accumulate": 1, "lr_backbone_mult": 1.0, "init_from": None, "compile": False,
                "freeze_backbone": False, "sync_bn": False, "devices": 1, "progressive_stages": 1,
                "progressive_min_size": None, "progressive_dropout": (), "progressive_randaug": (),
                "progressive_mixup": ()}
#: The keys that decide a supernet's weights (a resume with others changed is refused).
WEIGHT_KEYS = {"data": ("dataset", "resolution", "data_fraction", "val_fraction", "crop_pct", "strict"),
               "train": ("recipe", "batch_size", "optimizer", "lr", "lr_batch", "momentum", "rmsprop_decay",
                         "rmsprop_eps", "weight_decay", "schedule", "decay_rate", "decay_epochs", "warmup_epochs",
                         "label_smoothing", "augment", "grad_clip"),
               "supernet": ("epochs", "sampling", "sandwich_random"), "search": ("space",), "run": ("seed",)}


def supernet_key(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The keys of a config (as a dict) that decide the supernet's weights."""
    return {sec: {k: d[sec][k] for k in keys} for sec, keys in WEIGHT_KEYS.items()}


def check_recipe(cfg: ExperimentConfig) -> None:
    """One line naming the ``[train]`` keys a supernet cannot honour (it trains in fp32 on one
    device, without EMA, dropout overrides or a time limit)."""
    t = cfg.train
    r = resolve(t)  # ema and tta as the recipe leaves them
    got = {k: getattr(r if k in ("ema", "tta") else t, k) for k in UNUSED_TRAIN}
    bad = [f"train.{k} = {got[k]!r}" for k, v in UNUSED_TRAIN.items() if got[k] != v]
    if t.precision not in ("auto", "fp32"):
        bad.append(f"train.precision = {t.precision!r}")
    if bad:
        raise UserError(f"supernet training does not use {', '.join(bad)}: drop them (it trains in fp32 on one "
                         "device with the [train] optimiser, schedule, batch and augmentation)")


def _job(cfg: ExperimentConfig) -> Any:
    return JobConfig.make(cfg.data, cfg.train, seed=cfg.run.seed, quiet=True)


def train_supernet(cfg: ExperimentConfig, out: str | Path, *, resume: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    """Train the supernet of ``cfg.search.space`` into ``out`` (module docstring); returns the last
    epoch's record plus ``seconds`` and ``out``.

    The trainer's steps (:mod:`effnas.experiments.train`): data, loader and optimiser from
    :mod:`~effnas.experiments.train.steps.setup`, the epoch from
    :func:`~effnas.experiments.train.steps.epoch.train_epoch`
    with this module's sampled candidates as the forward/backward, the resumable state from
    :mod:`~effnas.experiments.train.steps.state` (plus the candidate sampler's RNG)."""
    out = Path(out)
    space = _space(cfg)
    check_recipe(cfg)
    ckpt_path = out / CHECKPOINT
    _check_out(cfg, out, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    job = _job(cfg)
    device = device_for(job)
    set_threads(cfg.train.threads)  # 0: the free cores (effnas.experiments.train.threads)
    ds, train_split, _, _ = load_data(job)
    resolution = cfg.data.resolution or space.resolution
    seed_everything(cfg.run.seed)
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    net = Supernet(space, num_classes=ds.num_classes, resolution=resolution).to(
        device, memory_format=fmt)  # type: ignore[call-overload]
    optimizer = optimizer_for(job, net.net)
    loader = loader_for(job, Context(), ds, train_split, resolution=resolution, batch_size=job.batch_size,
                        train=True, device=device)
    epochs, steps = cfg.supernet.epochs, len(loader)
    state, rng = TrainState(), random.Random(cfg.run.seed)
    if resume and ckpt_path.exists():
        # weights_only (a crafted supernet.pt runs no code); truncated, older, misshapen or NaN: one line
        ck = load_checkpoint(ckpt_path, keys=RESUME_KEYS, fix=RESUME_FIX)
        check_weights(ckpt_path, ck["state"], net.net.state_dict(), fix=RESUME_FIX)
        net.net.load_state_dict(ck["state"])
        state = restore(ck, optimizer=optimizer)
        try:
            rng.setstate(ck["sampler"])
        except (TypeError, ValueError) as e:
            raise UserError(f"checkpoint {str(ckpt_path)!r} holds no sampler state: {RESUME_FIX}") from e
    atomic_text(out / CONFIG, json.dumps(cfg.to_dict(), indent=2))
    largest, smallest = net.spec(largest_params(space)), net.spec(smallest_params(space))

    def candidates(batches: Batches, tally: Tally) -> Tensor:
        x, y = next(batches)
        loss, logits = _step(net, x, y, cfg, rng, largest, smallest)
        tally.add(loss, logits, y)
        return loss

    schedule = Schedule.of(job, lr=job.base_lr(), steps_per_epoch=steps, epochs=epochs)
    update = Update(optimizer, net, grad_clip=job.grad_clip)
    per_step = 1 if cfg.supernet.sampling == "uniform" else 2 + cfg.supernet.sandwich_random
    bar = Progress((epochs - state.epoch) * steps, f"supernet {space.name}", end_epoch=epochs,
                   enabled=progress and state.epoch < epochs)
    t_start = time.perf_counter()
    try:
        for epoch in range(state.epoch + 1, epochs + 1):
            t0 = time.perf_counter()
            net.train()
            r = train_epoch(loader, epoch, candidates, schedule=schedule, update=update, start_step=(epoch - 1) * steps,
                            tally=Tally(device, torch.float64), progress=bar)
            if r.diverged:
                raise UserError(f"supernet training diverged at epoch {epoch} (non-finite loss): lower --lr")
            state.count(steps=r.steps, seconds=r.seconds, images=r.images)
            state.add(record := {"epoch": epoch, "train_loss": r.train_loss, "train_accuracy": r.train_accuracy,
                                 "subnets": per_step * r.steps, "images": r.images, "seconds": time.perf_counter() - t0,
                                 "lr": schedule.lr * r.lr_factor})
            bar.epoch(record)
            ck = {**net.to_checkpoint(), **snapshot(state, optimizer=optimizer,
                                                    elapsed=state.elapsed_before + time.perf_counter() - t_start),
                  "sampler": rng.getstate(), "split": split_key(cfg.data.dataset, cfg.run.seed, cfg.data.val_fraction)}
            atomic_write(ckpt_path, lambda p, ck=ck: torch.save(ck, p))  # type: ignore[misc]
            _write_epochs(out / EPOCHS, state.history)
    finally:
        bar.close()
    last = state.history[-1] if state.history else {}
    return {**last, "epochs": epochs, "seconds": time.perf_counter() - t_start, "out": str(out)}


def _check_out(cfg: ExperimentConfig, out: Path, *, resume: bool) -> None:
    """``out`` holds no supernet, or (``resume``) one trained with the same weight-deciding keys."""
    stored = out / CONFIG
    if (out / CHECKPOINT).exists() and not resume:
        raise UserError(f"{out} already holds a supernet: continue it with --resume, or give another --out")
    if resume and stored.exists():
        now = supernet_key(cfg.to_dict())
        try:
            old = json.loads(stored.read_text())
        except (OSError, ValueError) as e:
            raise unreadable(stored, e) from e
        if not isinstance(old, dict):
            raise unreadable(stored, "not a JSON object")
        before = supernet_key(with_defaults(old, cfg.to_dict()))
        if before != now:
            diff = sorted(f"{s}.{k}" for s, sec in now.items() for k, v in sec.items() if before[s].get(k) != v)
            raise UserError(f"{out} holds a supernet trained with other settings ({', '.join(diff)} differ): "
                             "resume with the same settings, or give another --out")


def _step(net: Supernet, x: Tensor, y: Tensor, cfg: ExperimentConfig, rng: random.Random,
          largest: NetworkSpec, smallest: NetworkSpec) -> tuple[Tensor, Tensor]:
    """One optimiser step's gradients; returns the loss and the logits the accuracy is read from."""
    ls = resolve(cfg.train).label_smoothing
    if cfg.supernet.sampling == "uniform":
        out = net(x, net.spec(random_params(net.space, rng)))
        loss = F.cross_entropy(out, y, label_smoothing=ls)
        loss.backward()
        return loss.detach(), out.detach()
    out = net(x, largest)  # sandwich: the largest learns from the labels, the others from it
    loss = F.cross_entropy(out, y, label_smoothing=ls)
    loss.backward()
    soft = out.detach().softmax(1)
    for spec in [smallest, *(net.spec(random_params(net.space, rng)) for _ in range(cfg.supernet.sandwich_random))]:
        F.cross_entropy(net(x, spec), soft).backward()
    return loss.detach(), out.detach()


def _write_epochs(path: Path, history: list[dict[str, Any]]) -> None:
    def write(p: Path) -> None:
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(history[0]))
            w.writeheader()
            w.writerows(history)

    atomic_write(path, write)


def load(path: str | Path, device: torch.device | str = "cpu") -> tuple[Supernet, dict[str, Any]]:
    """The supernet saved in ``path`` (a directory or its ``supernet.pt``) and its checkpoint."""
    p = Path(path)
    p = p / CHECKPOINT if p.is_dir() else p
    if not p.is_file():
        raise UserError(f"no supernet at {path}: train one with 'effnas supernet train --out {path}'")
    ck = read_checkpoint(p)  # weights_only: a crafted supernet.pt runs no code
    return Supernet.from_checkpoint(ck).to(device), ck


def preflight(path: str | Path, *, space: SearchSpace | None, resolution: int | None, dataset: str, seed: int,
              val_fraction: float) -> tuple[Supernet, dict[str, Any]]:
    """Before a search: the supernet in ``path`` exists, holds ``space`` at ``resolution`` and was
    trained on the split the search evaluates on (one-line errors). Returns it and its checkpoint."""
    net, ck = load(path)
    if space is not None and space.to_dict() != net.space.to_dict():
        raise UserError(f"supernet {path} holds space {net.space.name!r}, the search samples {space.name!r}: search "
                         f"--space {net.space.name}, or train a supernet of {space.name}")
    if resolution is not None and resolution != net.resolution:
        raise UserError(f"supernet {path} was trained at {net.resolution} px, the search's candidates are "
                         f"{resolution} px: set --resolution {net.resolution}, or train a supernet at {resolution} px")
    split = split_key(dataset, seed, val_fraction)
    if split != ck["split"]:
        raise UserError(f"supernet {path} was trained on {ck['split']}; this search evaluates on {split}: the "
                         "validation images must be the supernet's (same --dataset, seed and val_fraction)")
    return net, ck


#: What a process keeps between candidates (module level, so a Ray worker keeps it across tasks:
#: each task unpickles a fresh trainer): the supernet, its data and reference scores, by setup key.
_STATE: dict[tuple[Any, ...], dict[str, Any]] = {}
#: A validation split up to this size (as float batches) is kept in memory; a larger one is read
#: again for every candidate (an ImageNet-size split would not fit).
VAL_CACHE_BYTES = 256 << 20


@dataclass
class SupernetTrainer:
    """``trainer(config, *, on_epoch=None) -> metrics`` that evaluates a candidate with the
    supernet in ``path``: inherited weights, BatchNorm recalibrated, accuracy on the validation
    split (module docstring). ``config`` is the search's candidate config (``model``,
    ``dataset``, ``seed``, ``val_fraction``, ``batch_size``, ``eval_batch_size``, ``path``,
    ``strict``, ``crop_pct``, ``threads``: the ``[data]`` keys read the images as training did).

    ``space``: the search's space, which must be the supernet's. ``calibration_batches``: training
    batches of ``batch_size`` images (the first ones of the training split, evaluation transform)
    that re-estimate the BatchNorm statistics. ``reference > 0`` (a pre-filter,
    :class:`effnas.experiments.estimators.proxy.Prefiltered`): ``val_accuracy`` is the accuracy's rank among
    that many random candidates of the space (:func:`effnas.nas.estimators.zerocost.quantile`) and the accuracy is
    ``proxy_score``. The supernet and the images are loaded once per process (and Ray worker)."""

    path: str
    space: SearchSpace | None = None
    reference: int = 0
    calibration_batches: int = 8

    def _setup(self, config: dict[str, Any]) -> dict[str, Any]:
        ckpt = Path(self.path) / CHECKPOINT if Path(self.path).is_dir() else Path(self.path)
        data: dict[str, Any] = {"dataset": str(config["dataset"]), "seed": int(config.get("seed", 0)),
                "val_fraction": float(config.get("val_fraction", 0.1)), "path": str(config.get("path", "auto")),
                "strict": bool(config.get("strict", False)), "crop_pct": config.get("crop_pct"),
                "batch_size": int(config["batch_size"]), "eval_batch_size": int(config.get("eval_batch_size", 512))}
        key = (str(ckpt), ckpt.stat().st_mtime_ns if ckpt.exists() else None, json.dumps(data, sort_keys=True),
               self.calibration_batches, self.reference, json.dumps(self.space.to_dict() if self.space else None))
        if key in _STATE:
            return _STATE[key]
        net, _ = preflight(self.path, space=self.space, resolution=None, dataset=data["dataset"], seed=data["seed"],
                           val_fraction=data["val_fraction"])
        ds = data_mod.load_dataset(data["dataset"], path=data["path"], strict=data["strict"])
        train, val, _ = data_mod.split(ds, seed=data["seed"], val_fraction=data["val_fraction"])

        def loader(split: Any, batch_size: int) -> data_mod.Loader:
            return data_mod.make_loader(ds, split, resolution=net.resolution, batch_size=min(batch_size, len(split)),
                                        train=False, seed=data["seed"], channels_last=False, workers=0,
                                        crop_pct=data["crop_pct"], strict=data["strict"])

        it: Iterator[tuple[Tensor, Tensor]] = loader(train, data["batch_size"]).epoch(0)
        calib = [x for (x, _), _ in zip(it, range(self.calibration_batches), strict=False)]
        val_loader = loader(val, data["eval_batch_size"])
        small = len(val) * 3 * net.resolution ** 2 * 4 <= VAL_CACHE_BYTES
        state = {"net": net, "calib": calib, "val": list(val_loader.epoch(0)) if small else val_loader,
                 "calibration_images": sum(len(b) for b in calib)}
        if self.reference:
            rng = random.Random(data["seed"])
            state["ref"] = [self._accuracy(state, net.spec(random_params(net.space, rng)))
                            for _ in range(self.reference)]
        _STATE.clear()  # one supernet and data set per process
        _STATE[key] = state
        return state

    @staticmethod
    def _accuracy(state: dict[str, Any], spec: NetworkSpec) -> float:
        model = state["net"].extract(spec)
        recalibrate_bn(model, state["calib"])
        correct = n = 0
        with torch.no_grad():
            val = state["val"]
            for x, y in val if isinstance(val, list) else val.epoch(0):
                correct += int((model(x).argmax(1) == y).sum())
                n += len(y)
        return correct / max(n, 1)

    def evaluate(self, spec: NetworkSpec, config: dict[str, Any]) -> float:
        """``spec``'s validation accuracy with inherited, recalibrated weights."""
        return self._accuracy(self._setup(config), spec)

    def __call__(self, config: dict[str, Any], *,
                 on_epoch: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        with torch_threads(int(config.get("threads", 0) or 0)):
            st = self._setup(config)
            net: Supernet = st["net"]
            model = config["model"]
            spec = NetworkSpec.from_dict(model) if isinstance(model, dict) else model
            if spec.resolution != net.resolution or spec.num_classes != net.num_classes:
                raise UserError(f"supernet {self.path} holds {net.num_classes}-class networks at {net.resolution} px; "
                                 f"the search asks for {spec.num_classes} classes at {spec.resolution} px: set "
                                 f"--resolution {net.resolution}, or train a supernet at the search's resolution")
            t0 = time.perf_counter()
            acc = self._accuracy(st, spec)
            seconds = time.perf_counter() - t0
        ranked = {"val_accuracy": quantile(acc, st["ref"]), "proxy_score": acc} if self.reference else {}
        return {"status": "completed", "val_accuracy": acc, **ranked, "test_accuracy": None,
                "calibration_images": st["calibration_images"],
                "params": None, "macs": None, "resolution": net.resolution, "num_classes": net.num_classes,
                "train_seconds": seconds, "images_per_second": None}


__all__ = ["CHECKPOINT", "SupernetTrainer", "load", "preflight", "supernet_key", "train_supernet"]
