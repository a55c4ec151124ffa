"""Experiment configuration: one typed config per concept, from TOML, ``--set`` or CLI flags.

An experiment is seven sections, each a frozen dataclass, plus ``name`` and ``description``:

* ``[data]`` (:class:`DataConfig`): what to train on;
* ``[train]`` (:class:`TrainConfig`): the training recipe of every full run (grid candidates,
  family members, backbones; ``effnas train``);
* ``[search]`` (:class:`SearchConfig`) with ``[search.train]`` (:class:`ProxyConfig`): the
  baseline search and the proxy training of its candidates;
* ``[grid]``, ``[family]``, ``[backbones]``, ``[run]``.

One training run is a :class:`JobConfig`: ``[data]`` + ``[train]`` + what a stage varies per run
(the model spec, seed, run directory). The trainer (:mod:`effnas.experiments.train.loop`) takes exactly
this class, so a key in ``[train]`` is a key the trainer reads::

    cfg = load_config("demo", overrides=["search.trials=10", "family.seeds=3"])
    cfg.family.seeds                         # (0, 1, 2)
    ExperimentConfig.from_dict(cfg.to_dict()) == cfg

Names without a path (``demo``, ``cifar10``, ``paper``) are the files in ``experiments/config/presets/``.
What each key does to each run: ``docs/experiments.md`` and :mod:`effnas.experiments.pipeline.plan`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from effnas.experiments.config import progressive
from effnas.experiments.config import sections as io
from effnas.experiments.config.choices import AUGMENTS, DATA_PATHS, DEVICES, OPTIMIZERS, PRECISIONS, SCHEDULES, TRACKERS
from effnas.experiments.config.recipes import RECIPE_NAMES, RECIPES
from effnas.experiments.config.sections import MAX_SEED, Section, at_most, choice, fraction, installed, positive, unit
from effnas.experiments.config.stages import (
    BackbonesConfig,
    FamilyConfig,
    GridConfig,
    ProxyConfig,
    RunConfig,
    SearchConfig,
)
from effnas.experiments.config.supernet import SupernetConfig
from effnas.search_spaces.block import MAX_RESOLUTION
from effnas.search_spaces.common.errors import UserError

#: Where named configs (``demo``, ``cifar10``, ``paper``) live.
CONFIG_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class DataConfig(Section):
    """What to train on.

    Args:
        dataset: ``shapes`` (generated, offline), ``digits``, ``mnist5k``, ``cifar10:PATH``,
            ``cifar100:PATH``, ``imagefolder:PATH`` or ``shards:DIR`` (``effnas data pack``).
        resolution: input pixels of the base network; ``None``: the model's own. Scaled networks
            use their own scaled resolution.
        data_fraction: fraction of the training split used by every full training run.
        val_fraction: share of the training pool held out for validation (model selection; the
            test split is only reported).
        loader_workers: DataLoader worker processes of streamed image folders (0: load in the
            main process); in-memory sets load in the main process.
        loader_threads: threads of the main process that decode and crop streamed images, with
            ``loader_workers = 0`` (libjpeg-turbo and torch's resize release the GIL: no
            inter-process copy of the batches); 0: none. Not with a per-image AutoAugment /
            RandAugment policy (its draws use torch's process-wide generator).
        crop_pct: streamed image folders' evaluation centre crop as a share of the shorter side;
            ``None``: EfficientNet's ``resolution / (resolution + 32)`` (0.875 at 224 px).
        path: how an image folder is read: ``auto`` (decoded into a shared memory-mapped cache when
            it holds at most 2 GiB of pixels, else streamed), ``memory`` or ``stream``.
        strict: an image file that cannot be decoded stops the run (default: named in a warning,
            skipped and counted as ``skipped_images``).
    """

    SECTION: ClassVar[str] = "data"

    dataset: str = "shapes"
    resolution: int | None = None
    data_fraction: float = 1.0
    val_fraction: float = 0.1
    loader_workers: int = 0
    loader_threads: int = 0
    crop_pct: float | None = None
    path: str = "auto"
    strict: bool = False

    def __post_init__(self) -> None:
        if not self.dataset:
            raise UserError("data.dataset must not be empty: give a dataset name such as 'shapes'")
        positive("data.resolution", self.resolution)
        at_most("data.resolution", self.resolution, MAX_RESOLUTION, "pixels a spec may have")
        fraction("data.data_fraction", self.data_fraction)
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        positive("data.loader_workers", self.loader_workers, zero=True)
        positive("data.loader_threads", self.loader_threads, zero=True)
        if self.loader_workers and self.loader_threads:
            raise UserError("data.loader_workers and data.loader_threads both set: decode in worker processes or in "
                             "threads of the main process, not both")
        if self.crop_pct is not None:
            fraction("data.crop_pct", self.crop_pct)
        choice("data.path", self.path, DATA_PATHS)


@dataclass(frozen=True)
class TrainConfig(Section):
    """The training recipe (EfficientNet §5.2 in ``paper.toml``). Units: epochs unless named. Keys
    whose default is ``None`` take the value of ``recipe`` (:mod:`effnas.experiments.config.recipes`).

    Args:
        recipe: ``default`` or ``fast`` (a short-budget recipe for small images: docs/training.md).
        model: the base network, a registered name or a spec JSON path (a search's best replaces
            it in ``effnas run``).
        epochs: schedule length.
        batch_size: images per optimiser step over all devices and accumulated micro-batches (the
            global batch); each device computes ``batch_size / (devices * accumulate)`` at a time.
        optimizer: ``sgd`` (Nesterov), ``rmsprop`` (TF semantics) or ``adamw``.
        lr: peak learning rate at ``lr_batch`` images per step, scaled linearly to ``batch_size``;
            ``None``: per 256 images, 0.4 (sgd; ``fast``: 0.2) / 4e-3 (adamw) / 0.016 (rmsprop).
        lr_batch: the batch size ``lr`` refers to (paper: 0.256 per 4096); ``None``: ``lr`` as given.
        momentum: SGD / RMSProp momentum.
        rmsprop_decay, rmsprop_eps: RMSProp squared-gradient decay and epsilon (TF: 0.9, 1e-3).
        weight_decay: L2 penalty (not on BatchNorm parameters and biases); recipe: 5e-5 / ``fast`` 5e-4.
        schedule: ``cosine``, ``linear`` (to zero), ``step`` (x ``decay_rate`` every ``decay_epochs``,
            staircase) or ``constant``, after ``warmup_epochs`` of linear warm-up; recipe: cosine / linear.
        decay_rate, decay_epochs: the step schedule (paper: x0.97 every 2.4 epochs).
        warmup_epochs: linear warm-up epochs (paper: 5); ``None``: ``min(1, 10 % of the run)`` (``fast``: 20 %).
        label_smoothing: cross-entropy label smoothing (paper: 0.1); recipe: 0.1 / ``fast`` 0.2.
        augment: ``auto`` (by data set and recipe), ``none``, ``crop``, ``crop_flip``, ``flip_translate``,
            ``rrc_flip``, ``randaugment``, ``autoaugment``.
        ema: weight EMA decay, 0 disables (TF EfficientNet: 0.9999); recipe: 0 / ``fast`` 0.99.
        tta: also evaluate the test split with test-time augmentation (flip + 1-pixel translations),
            reported as ``test_accuracy_tta`` beside ``test_accuracy``; recipe: off / ``fast`` on.
        grad_clip: max global gradient norm; 0: off.
        bn_momentum: PyTorch BatchNorm momentum; ``None``: the spec's own, raised for short runs.
        dropout, drop_connect_rate: of the base network; ``None``: the spec's own. Scaled
            members take ``family.dropout``; backbones keep their own.
        max_minutes: stop after the epoch that exceeds this budget (schedule unchanged).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        precision: ``auto`` (fp32 on CPU, bf16/fp16 autocast on CUDA), ``fp32``, ``bf16``, ``fp16``.
        channels_last, compile: memory format and ``torch.compile``.
        threads: torch CPU threads per run (shared by its ``devices``); 0: the cores other processes
            leave free, 1 to 4 (under Ray: the trial's CPUs); docs/training.md, "Threads".
        track: where each epoch's metrics go, to watch runs live: ``tensorboard`` (event files in the
            run directory), ``mlflow`` (needs the ``mlflow`` package) or ``none`` (docs/experiments.md).
        eval_batch_size: images per evaluation step.
        devices: data-parallel processes per run (DistributedDataParallel: one per GPU, NCCL; on
            CPU, gloo processes); the global batch is split between them (docs/gpu.md).
        accumulate: micro-batches whose gradients are summed before each optimiser step
            (gradient accumulation: a large ``batch_size`` on few devices).
        sync_bn: with ``devices > 1`` on GPUs, BatchNorm statistics over all devices' micro-batches
            (``torch.nn.SyncBatchNorm``; the paper's TPU training synchronises BN across cores);
            PyTorch has it on CUDA only.
        init_from: pretrained weights to start from (fine-tuning, ``docs/transfer.md``): an effnas
            weights file, a run directory or checkpoint, or ``LAYOUT:PATH`` of a timm, torchvision
            or TF-port checkpoint; the classifier is re-initialised when the class count differs.
        freeze_backbone: train only the classifier (the head); the backbone's weights and its
            BatchNorm statistics stay as loaded (BN in eval mode).
        lr_backbone_mult: the backbone's learning rate is this times the head's (the schedule's).
        progressive_stages, progressive_min_size, progressive_dropout, progressive_randaug, progressive_mixup:
            progressive learning (EfficientNetV2): M stages from ``progressive_min_size`` px to the run's resolution,
            regularisation ``[first, last]`` (:mod:`effnas.experiments.config.progressive`, docs/training.md).
    """

    SECTION: ClassVar[str] = "train"

    model: str = "efficientnet_nano"
    recipe: str = "default"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    lr_batch: int | None = None
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float | None = None
    schedule: str | None = None
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    warmup_epochs: float | None = None
    label_smoothing: float | None = None
    augment: str = "auto"
    ema: float | None = None
    tta: bool | None = None
    grad_clip: float = 0.0
    bn_momentum: float | None = None
    dropout: float | None = None
    drop_connect_rate: float | None = None
    max_minutes: float | None = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    threads: int = 0
    track: str = "tensorboard"
    eval_batch_size: int = 512
    devices: int = 1
    accumulate: int = 1
    sync_bn: bool = False
    init_from: str | None = None
    freeze_backbone: bool = False
    lr_backbone_mult: float = 1.0
    progressive_stages: int = 1
    progressive_min_size: int | None = None
    progressive_dropout: tuple[float, ...] = ()
    progressive_randaug: tuple[float, ...] = ()
    progressive_mixup: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        positive("train.lr_backbone_mult", self.lr_backbone_mult)
        if self.freeze_backbone and self.lr_backbone_mult != 1.0:
            raise UserError("train.freeze_backbone and train.lr_backbone_mult exclude each other (a frozen backbone "
                             "does not learn): give one of them")
        if self.init_from is not None and not self.init_from:
            raise UserError("train.init_from must name weights (a file, a run directory or LAYOUT:PATH), or be omitted")
        for key in ("epochs", "batch_size", "eval_batch_size", "devices", "accumulate", "lr", "lr_batch",
                    "decay_epochs", "max_minutes", "rmsprop_eps"):
            positive(f"train.{key}", getattr(self, key))
        for key in ("warmup_epochs", "weight_decay", "grad_clip", "threads"):
            positive(f"train.{key}", getattr(self, key), zero=True)
        at_most("train.warmup_epochs", self.warmup_epochs, self.epochs, "the warm-up fits in train.epochs")
        for key, choices in (("recipe", RECIPE_NAMES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("augment",
                             AUGMENTS), ("precision", PRECISIONS), ("device", DEVICES), ("track", TRACKERS)):
            choice(f"train.{key}", getattr(self, key), choices)
        if self.track == "mlflow":  # an optional dependency: refused before anything runs
            installed("train.track", self.track, "mlflow", "pip install mlflow, or use train.track = 'tensorboard'")
        for key in ("momentum", "rmsprop_decay", "label_smoothing", "ema", "dropout", "drop_connect_rate"):
            unit(f"train.{key}", getattr(self, key))
        for key in ("decay_rate", "bn_momentum"):
            unit(f"train.{key}", getattr(self, key), closed_low=False)
        if self.sync_bn and self.devices < 2:
            raise UserError("train.sync_bn synchronises BatchNorm across devices: set train.devices >= 2, or drop it")
        parts = self.devices * self.accumulate
        if self.batch_size % parts:
            raise UserError(f"train.batch_size {self.batch_size} must be a multiple of train.devices x "
                             f"train.accumulate = {parts}: change one of them")
        progressive.check(self)

    @property
    def micro_batch(self) -> int:
        """Images one device computes at a time: ``batch_size / (devices * accumulate)``.

        >>> TrainConfig(batch_size=4096, devices=8, accumulate=4).micro_batch
        128
        """
        return self.batch_size // (self.devices * self.accumulate)

    def base_lr(self) -> float:
        """The peak learning rate at ``batch_size``.

        >>> TrainConfig(lr=0.256, lr_batch=4096, batch_size=256).base_lr(), TrainConfig(batch_size=64).base_lr()
        (0.016, 0.1)
        """
        if self.lr is None:
            return RECIPES[self.recipe].base_lr(self.optimizer) * self.batch_size / 256
        return self.lr if self.lr_batch is None else self.lr * self.batch_size / self.lr_batch


@dataclass(frozen=True)
class JobConfig(TrainConfig, DataConfig):
    """One training run: ``[data]`` + ``[train]`` + what a stage sets per run. JSON-serialisable
    (it crosses to Ray workers as ``to_dict()``); the trainer's only input.

    Args:
        model: a registered name, a spec JSON path or ``NetworkSpec.to_dict()``.
        seed: model init, validation split, batch order, augmentation.
        max_epochs: stop after this many epochs (the schedule keeps ``epochs``).
        out_dir: run directory (None: nothing written); ``resume``: continue from its ``last.pt``.
        quiet: no progress bar.
    """

    SECTION: ClassVar[str] = "job"

    model: str | dict[str, Any] = "efficientnet_nano"  # type: ignore[assignment]
    seed: int = 0
    max_epochs: int | None = None
    out_dir: str | None = None
    resume: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        DataConfig.__post_init__(self)
        TrainConfig.__post_init__(self)
        positive("max_epochs", self.max_epochs)
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"seed must be in [0, 2**32 - 1] (a generator seed), got {self.seed}")
        if not isinstance(self.model, str | dict) or not self.model:
            raise UserError(f"model must be a name, a spec path or a spec dict, got {self.model!r}")
        if self.resume and not self.out_dir:
            raise UserError("resume needs out_dir: give --out DIR of the run to continue")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "trainer config") -> JobConfig:
        return io.section(cls, "job", data, source)  # type: ignore[no-any-return]

    @classmethod
    def make(cls, data: DataConfig, train: TrainConfig, **job: Any) -> JobConfig:
        """``[data]`` and ``[train]`` with the per-run keys ``job`` on top (tuples kept: not ``to_dict``'s lists)."""
        return cls(**{**{f.name: getattr(s, f.name) for s in (data, train) for f in dataclasses.fields(s)}, **job})


SECTIONS: dict[str, type[Section]] = {
    "data": DataConfig, "train": TrainConfig, "search": SearchConfig, "grid": GridConfig,
    "family": FamilyConfig, "backbones": BackbonesConfig, "supernet": SupernetConfig, "run": RunConfig,
}


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """A whole experiment: search -> grid -> family -> backbones -> curves -> report."""

    name: str = "experiment"
    description: str = ""
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    family: FamilyConfig = dataclasses.field(default_factory=FamilyConfig)
    backbones: BackbonesConfig = dataclasses.field(default_factory=BackbonesConfig)
    supernet: SupernetConfig = dataclasses.field(default_factory=SupernetConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        io.check_warmup(self.train.warmup_epochs, {"grid.epochs": self.grid.epochs, "family.epochs": self.family.epochs,
                                                   "backbones.epochs": self.backbones.epochs,
                                                   "supernet.epochs": self.supernet.epochs})

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
        """Build and validate; ``source`` names the file in error messages."""
        if not isinstance(data, dict):
            raise UserError(f"{source} must be a table of sections, got {type(data).__name__}")
        for key, value in data.items():
            if key not in ("name", "description") and key not in SECTIONS:
                where = "key" if not isinstance(value, dict) else "section"
                raise UserError(f"unknown {where} {key!r} in {source}"
                                 f"{io.suggest(key, ['name', 'description', *SECTIONS])}")
        hints = io.field_types(cls)
        kwargs = {k: io.coerce(v, hints[k], k, source) for k, v in data.items()}
        return cls(**kwargs)

    def to_toml(self) -> str:
        """TOML text that :func:`load_config` reads back to an equal config (``None`` keys omitted)."""
        d = self.to_dict()
        lines = [f"{k} = {io.toml_value(d[k])}" for k in ("name", "description")]
        for sec in SECTIONS:
            lines += io.toml_tables(sec, d[sec])
        return "\n".join(lines) + "\n"

    def with_overrides(self, overrides: list[str] | tuple[str, ...], *, source: str = "--set") -> ExperimentConfig:
        """A new config with ``section.key=value`` overrides applied (values parsed by field type)."""
        data = self.to_dict()
        for item in overrides:
            io.apply_override(data, ExperimentConfig, item, source)
        return ExperimentConfig.from_dict(data, source=source)

    def with_values(self, values: dict[str, Any], *, source: str = "the command line") -> ExperimentConfig:
        """A new config with typed values set by dotted key (``{"grid.epochs": 4}``); ``None`` values
        are left out (a flag the user did not give)."""
        data = self.to_dict()
        for key, value in values.items():
            if value is None:
                continue
            *path, name = key.split(".")
            node = data
            for part in path:
                node = node[part]
            node[name] = list(value) if isinstance(value, tuple) else value
        return ExperimentConfig.from_dict(data, source=source)


def load_config(ref: str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a TOML config (a path, or a name in ``experiments/config/presets/``; ``None``: the defaults)
    and apply ``section.key=value`` overrides.

    Raises:
        UserError: a missing file, malformed TOML, an unknown section or key, a wrong type or a
            value out of range; one line naming the key and the file.
    """
    if ref is None:
        cfg = ExperimentConfig()
    else:
        path, data = io.read_toml(ref, CONFIG_DIR)
        cfg = ExperimentConfig.from_dict(io.anchored(data, path.parent), source=path.name)
    return cfg.with_overrides(overrides) if overrides else cfg


__all__ = ["CONFIG_DIR", "SECTIONS", "BackbonesConfig", "DataConfig", "ExperimentConfig", "FamilyConfig", "GridConfig",
           "JobConfig", "ProxyConfig", "RunConfig", "SearchConfig", "SupernetConfig", "TrainConfig", "load_config"]
