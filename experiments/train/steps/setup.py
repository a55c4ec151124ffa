"""What a run trains with, built in a fixed order: threads, device, data, spec, model, optimiser,
schedule inputs, EMA, precision, loaders (docs/training.md); and what changes between the stages of
progressive learning (:func:`enter_stage`: the training loader's image size and RandAugment magnitude,
the head's dropout; :mod:`effnas.experiments.config.progressive`).

The order is part of the result: :func:`setup` seeds the global RNGs right before the model is
initialised, so a seeded run draws the same initial weights, dropout masks and augmentations
whatever else changes around it. The supernet trainer
(:func:`effnas.experiments.estimators.supernet.train_supernet`) builds its data, loader and optimiser
with the same functions.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import effnas.search_spaces as ss
from effnas.experiments.config.progressive import Stage, stage_at, stages
from effnas.experiments.config.recipes import resolve
from effnas.experiments.config.schema import JobConfig
from effnas.experiments.data import datasets as data_mod
from effnas.experiments.data.files.streamloader import StreamLoader
from effnas.experiments.data.malloc import reuse_large_blocks
from effnas.experiments.train import guard
from effnas.experiments.train.devices import autocast_for
from effnas.experiments.train.distributed import Context
from effnas.experiments.train.optim import ModelEMA, freeze_backbone, make_optimizer
from effnas.experiments.train.rng import seed_everything
from effnas.experiments.train.rundir import LAST, check_weights
from effnas.experiments.train.threads import Threads, set_threads
from effnas.search_spaces.common.errors import UserError

AnySplit = data_mod.Split | data_mod.FileSplit


def check_sync_bn(cfg: JobConfig, device: torch.device) -> None:
    """``train.sync_bn`` is refused before anything is written on a device without SyncBatchNorm."""
    if cfg.sync_bn and device.type != "cuda":
        raise UserError(f"train.sync_bn needs CUDA devices (PyTorch has no SyncBatchNorm on {device.type}): "
                         "drop it, or train on GPUs")


def resolve_spec(cfg: JobConfig, num_classes: int) -> ss.NetworkSpec:
    """The spec ``cfg.model`` names, with the data set's class count and the run's overrides."""
    if isinstance(cfg.model, dict):
        spec = ss.NetworkSpec.from_dict(cfg.model)
        spec = dataclasses.replace(spec, num_classes=num_classes)
    elif isinstance(cfg.model, str):
        spec = ss.load_spec(cfg.model, num_classes=num_classes)
    else:
        raise UserError(f"model must be a name, a spec path or a spec dict, got {type(cfg.model).__name__}")
    changes: dict[str, Any] = {}
    if cfg.resolution is not None:
        changes["resolution"] = cfg.resolution
    if cfg.dropout is not None:
        changes["dropout"] = cfg.dropout
    if cfg.drop_connect_rate is not None:
        changes["drop_connect_rate"] = cfg.drop_connect_rate
    return dataclasses.replace(spec, **changes) if changes else spec


def build_model(cfg: JobConfig, spec: ss.NetworkSpec) -> tuple[ss.NetworkSpec, ss.Network, dict[str, Any] | None]:
    """The model, freshly initialised or (``init_from``) from pretrained weights: an effnas weights
    file, a run directory or checkpoint, or ``LAYOUT:PATH`` of a foreign checkpoint. The classifier is
    re-initialised when the class count differs; the weights' padding and BN epsilon win
    (``effnas.experiments.weights.convert.pretrained_model``). Returns (spec actually built, model, summary or None)."""
    if cfg.init_from is None:
        return spec, ss.build(spec), None
    from effnas.experiments.weights.convert import pretrained_model  # lazy: only for fine-tuning (foreign layouts)

    return pretrained_model(spec, cfg.init_from)


def bn_momentum_for(spec_momentum: float, total_steps: int) -> float:
    """BatchNorm momentum for a run of ``total_steps`` optimiser steps (auto mode).

    The spec's own (TF's 0.99 decay = 0.01 here) unless the run is too short for the running
    statistics to forget their initialisation: then ``min(0.1, 10 / total_steps)``, which
    leaves a weight of about ``e^-10`` on the initial statistics at the end. Without this a
    5-epoch proxy run of a few hundred steps evaluates with nearly initial statistics. Below 100
    steps 0.1 would leave more (``0.9^10 = 0.35`` after a 10-step run, which then evaluates at
    chance): there the momentum is ``1 - e^(-10 / total_steps)``, exactly ``e^-10`` left.

    >>> bn_momentum_for(0.01, 100_000), bn_momentum_for(0.01, 200), bn_momentum_for(0.01, 100)
    (0.01, 0.05, 0.1)
    >>> round(bn_momentum_for(0.01, 12), 3)
    0.565
    """
    steps = max(total_steps, 1)
    return max(spec_momentum, min(0.1, 10 / steps), 1 - math.exp(-10 / steps) if steps < 100 else 0.0)


def set_bn_momentum(model: nn.Module, momentum: float, accumulate: int) -> None:
    """Every BatchNorm layer's momentum per micro-batch, so that its statistics forget at
    ``momentum`` per optimiser step of ``accumulate`` micro-batches."""
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = 1 - (1 - momentum) ** (1 / accumulate)


def load_data(cfg: JobConfig) -> tuple[data_mod.Dataset, AnySplit, AnySplit, AnySplit]:
    """The data set (cached per process) and its (train, validation, test) splits: test fixed,
    validation seeded by ``cfg.seed``."""
    ds = data_mod.load_dataset(cfg.dataset, path=cfg.path, strict=cfg.strict)
    train, val, test = data_mod.split(ds, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                      data_fraction=cfg.data_fraction)
    return ds, train, val, test


def loader_for(cfg: JobConfig, ctx: Context, ds: data_mod.Dataset, split: AnySplit, *, resolution: int,
               batch_size: int, train: bool, device: torch.device, magnitude: float | None = None) -> data_mod.Loader:
    """A split's loader on this rank: training batches of ``batch_size`` images (global) cut into
    this rank's micro-batches; evaluation on every ``world``-th image (the ranks' sums are added).
    ``magnitude``: RandAugment's (a progressive stage's; None: the default)."""
    if not train and ctx.world > 1:
        split = split.subset(ctx.shard(len(split)))
    return data_mod.make_loader(ds, split, resolution=resolution, batch_size=batch_size, train=train, seed=cfg.seed,
                                policy=resolve(cfg).augment, device=device, channels_last=cfg.channels_last,
                                workers=cfg.loader_workers, threads=cfg.loader_threads, crop_pct=cfg.crop_pct,
                                strict=cfg.strict, shard=(ctx.rank, ctx.world, cfg.accumulate) if train else (0, 1, 1),
                                magnitude=magnitude)


def optimizer_for(cfg: JobConfig, model: nn.Module) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over ``model``'s trainable parameters at the base learning rate."""
    return make_optimizer(cfg.optimizer, model, lr=cfg.base_lr(), momentum=cfg.momentum,
                          weight_decay=resolve(cfg).weight_decay, rmsprop_decay=cfg.rmsprop_decay,
                          rmsprop_eps=cfg.rmsprop_eps, lr_backbone_mult=cfg.lr_backbone_mult)


@dataclass
class Setup:
    """Everything a run trains and evaluates with (see :func:`setup`)."""

    device: torch.device
    autocast: AbstractContextManager[Any]
    ds: data_mod.Dataset
    sizes: tuple[int, int, int]  # images in the train, validation and test splits
    spec: ss.NetworkSpec
    params: int
    macs: int
    trainable: int
    init: dict[str, Any] | None
    model: nn.Module  # the network itself (checkpoints, EMA, clipping)
    step_model: nn.Module  # what the training steps call: DDP-wrapped and compiled when asked
    lr: float
    optimizer: torch.optim.Optimizer
    ema: ModelEMA | None
    scaler: torch.amp.GradScaler | None
    bn_momentum: float
    train_loader: data_mod.Loader
    val_loader: data_mod.Loader
    test_loader: data_mod.Loader
    threads: Threads
    train_split: AnySplit
    stages: tuple[Stage, ...]  # progressive learning's; one stage: the run itself
    stage: Stage  # the one train_loader and the head's dropout are set for

    @property
    def resolution(self) -> int:
        return self.spec.resolution

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    @property
    def eval_model(self) -> nn.Module:
        """What validation, testing and ``best.pt`` use: the EMA weights when enabled."""
        return self.ema.module if self.ema is not None else self.model


def setup(cfg: JobConfig, ctx: Context, device: torch.device, *, weights: dict[str, Any] | None = None,
          start_epoch: int = 1) -> Setup:
    """Build the run of ``cfg`` on this rank; ``weights``: a resumed run's model state (loaded
    before DDP broadcasts rank 0's parameters); its training loader and dropout are those of the
    progressive stage of ``start_epoch`` (the first epoch this process trains)."""
    threads = set_threads(cfg.threads, world=ctx.world)  # 0: the free cores (effnas.experiments.train.threads)
    reuse_large_blocks()  # batches and activations of tens of MB: reused, not page-faulted in at every step
    device = ctx.device(device)
    autocast, use_scaler = autocast_for(cfg, device)
    ds, train_split, val_split, test_split = load_data(cfg)
    spec = resolve_spec(cfg, ds.num_classes)
    res = spec.resolution
    plan = stages(cfg, res)  # the last stage trains at res, where the run evaluates
    stage = stage_at(plan, start_epoch)
    guard.check_memory(spec, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, device=device.type)
    seed_everything(cfg.seed)
    spec, model, init = build_model(cfg, spec)
    if ctx.rank:  # other ranks draw other augmentations and dropout masks (weights come from rank 0)
        seed_everything(cfg.seed + 1_000_003 * ctx.rank)
    from effnas.search_spaces.cost import cost  # lazy: fvcore is heavy; only once a run starts

    c = cost(spec, resolution=res, model=model)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt)  # type: ignore[call-overload]
    trainable = freeze_backbone(model) if cfg.freeze_backbone else c.params  # docs/transfer.md: BN stays in eval
    optimizer = optimizer_for(cfg, model)
    ema_decay = resolve(cfg).ema
    ema = ModelEMA(model, ema_decay) if ema_decay > 0 else None
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None

    def loader(split: AnySplit, batch_size: int, train: bool) -> data_mod.Loader:
        return loader_for(cfg, ctx, ds, split, resolution=stage.size if train else res, batch_size=batch_size,
                          train=train, device=device, magnitude=stage.randaug)

    train_loader = loader(train_split, cfg.batch_size, True)  # global batches, cut into this rank's micro-batches
    val_loader = loader(val_split, cfg.eval_batch_size, False)
    test_loader = loader(test_split, cfg.eval_batch_size, False)
    bn_m = cfg.bn_momentum or bn_momentum_for(spec.bn_momentum, cfg.epochs * len(train_loader))
    set_bn_momentum(model, bn_m, cfg.accumulate)
    _set_dropout(model, stage.dropout)
    if weights is not None:  # a resumed run's last.pt: its shapes are checked before loading
        check_weights(Path(cfg.out_dir or ".") / LAST, weights, model.state_dict())
        model.load_state_dict(weights)
    ddp = ctx.wrap(model, device, sync_bn=cfg.sync_bn)
    step_model: nn.Module = torch.compile(ddp) if cfg.compile else ddp  # type: ignore[assignment]
    return Setup(device=device, autocast=autocast, ds=ds, sizes=(len(train_split), len(val_split), len(test_split)),
                 spec=spec, params=c.params, macs=c.macs, trainable=trainable, init=init, model=model,
                 step_model=step_model, lr=cfg.base_lr(), optimizer=optimizer, ema=ema, scaler=scaler,
                 bn_momentum=bn_m, train_loader=train_loader, val_loader=val_loader, test_loader=test_loader,
                 threads=threads, train_split=train_split, stages=plan, stage=stage)


def _set_dropout(model: nn.Module, p: float | None) -> None:
    """The head's dropout (``ss.Network.dropout``, before the classifier) at ``p``; None: as built."""
    if p is not None:
        head = getattr(model, "dropout", None)
        assert isinstance(head, nn.Dropout), "every effnas network has a dropout before its classifier"
        head.p = p


def enter_stage(cfg: JobConfig, ctx: Context, s: Setup, stage: Stage) -> None:
    """Make ``s`` train as progressive ``stage``: a training loader at its image size and RandAugment
    magnitude (the previous loader is dropped; the files it skipped stay counted) and the head's
    dropout; mixup is the training step's (:class:`effnas.experiments.train.steps.epoch.MicroBatches`)."""
    old = s.train_loader
    s.train_loader = loader_for(cfg, ctx, s.ds, s.train_split, resolution=stage.size, batch_size=cfg.batch_size,
                                train=True, device=s.device, magnitude=stage.randaug)
    if isinstance(old, StreamLoader) and isinstance(s.train_loader, StreamLoader):
        s.train_loader.skipped |= old.skipped
    _set_dropout(s.model, stage.dropout)
    s.stage = stage
