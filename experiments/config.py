"""Experiment configuration: frozen dataclasses loaded from TOML with ``--set key=value`` overrides.

An experiment is six sections, each a frozen dataclass (``[data]``, ``[train]``, ``[search]``,
``[grid]``, ``[family]``, ``[run]``) plus a ``name`` and ``description`` at the top level::

    cfg = load_config("demo", overrides=["search.trials=10", "family.phis=[0,1]"])
    cfg.search.trials                        # 10
    ExperimentConfig.from_dict(cfg.to_dict()) == cfg

Names without a path (``demo``, ``cifar10``, ``paper``) are the files in
``experiments/configs/``. Every boundary error is a one-line ``ValueError`` naming the key and the
file: an unknown section or key (with a "did you mean" suggestion), a value of the wrong type, a
value out of range. Types come from the dataclass annotations: ``int``, ``float`` (integers are
accepted), ``bool``, ``str``, ``tuple[T, ...]`` (a TOML array) and ``X | None`` (omit the key in
TOML, or ``--set key=none``).

Field names in ``[train]`` are plain (``optimizer``, ``lr``, ``weight_decay`` ...) so the CLI can
map them onto the trainer's config dict (``docs/architecture.md``, the trainer contract).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

#: Augmentation policies (``experiments.augment.POLICIES`` on the trainer's branch).
AUGMENTS = ("auto", "none", "crop", "crop_flip", "rrc_flip", "randaugment", "autoaugment")
#: Where named configs (``demo``, ``cifar10``, ``paper``) live.
CONFIG_DIR = Path(__file__).parent / "configs"


def _positive(key: str, value: float | int | None, *, zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not zero):
        raise ValueError(f"{key} must be {'>= 0' if zero else '> 0'}, got {value}")


def _fraction(key: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{key} must be in (0, 1], got {value}")


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


class _Section:
    """``to_dict`` / ``from_dict`` shared by the sections; ``SECTION`` is the TOML table's name."""

    SECTION: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> Any:
        """Build and validate from plain data; unknown keys and wrong types are one-line errors."""
        return _section(cls, cls.SECTION, data, source)


@dataclass(frozen=True)
class DataConfig(_Section):
    """What to train on.

    Args:
        dataset: ``shapes`` (generated, offline), ``digits``, ``mnist5k``, ``cifar10:PATH``,
            ``cifar100:PATH`` or ``imagefolder:PATH`` (the trainer contract's names).
        resolution: input pixels; ``None`` uses each model's own.
        data_fraction: fraction of the training split used by every full training run.
        val_fraction: share of the training pool held out for validation (model selection; the
            test split is only reported).
        loader_workers: DataLoader worker processes of streamed image folders (0: load in the
            main process); in-memory sets load in the main process.
        crop_pct: streamed image folders' evaluation centre crop as a share of the shorter side;
            ``None``: EfficientNet's ``resolution / (resolution + 32)`` (0.875 at 224 px).
    """

    SECTION: ClassVar[str] = "data"

    dataset: str = "shapes"
    resolution: int | None = None
    data_fraction: float = 1.0
    val_fraction: float = 0.1
    loader_workers: int = 0
    crop_pct: float | None = None

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("data.dataset must not be empty: give a dataset name such as 'shapes'")
        _positive("data.resolution", self.resolution)
        _fraction("data.data_fraction", self.data_fraction)
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        _positive("data.loader_workers", self.loader_workers, zero=True)
        if self.crop_pct is not None:
            _fraction("data.crop_pct", self.crop_pct)


@dataclass(frozen=True)
class TrainConfig(_Section):
    """How to train one model (used by the grid search and the family; search has its own budget).

    Defaults are a plain SGD recipe for small CPU runs; ``paper.toml`` sets EfficientNet's (§5.2).

    Args:
        model: the base network, a registered name or a spec JSON path (the search's best
            replaces it when a search has run).
        epochs: training epochs.
        batch_size: images per step.
        optimizer: ``sgd``, ``rmsprop`` (TF semantics in the paper recipe) or ``adamw``.
        lr: peak learning rate at ``lr_batch`` images per step (scaled linearly to
            ``batch_size``; ``lr_batch = None`` means ``lr`` is used as given).
        lr_batch: the batch size ``lr`` refers to (paper: 0.256 per 4096).
        momentum: SGD / RMSProp momentum.
        rmsprop_decay: RMSProp squared-gradient decay (TF ``decay``, PyTorch ``alpha``).
        rmsprop_eps: RMSProp epsilon (TF EfficientNet uses 1e-3).
        weight_decay: L2 penalty.
        schedule: ``cosine``, ``step`` (x ``decay_rate`` every ``decay_epochs``, staircase: the
            paper's exponential decay)
            or ``constant``; all after ``warmup_epochs`` of linear warm-up.
        decay_rate, decay_epochs: the step schedule (paper: 0.97 every 2.4 epochs).
        warmup_epochs: linear warm-up epochs (paper: 5).
        label_smoothing: cross-entropy label smoothing (paper: 0.1).
        augment: a policy of ``experiments.augment``: ``auto`` (by data set), ``none``, ``crop``,
            ``crop_flip``, ``rrc_flip`` (random-resized crop + flip), ``randaugment``, ``autoaugment``.
        ema: exponential moving average decay of weights, 0 disables (TF EfficientNet: 0.9999).
        bn_momentum: PyTorch BatchNorm momentum (TF 0.99 = 0.01); ``None``: the spec's own.
        dropout: classifier dropout; ``None``: the spec's own (family members may override).
        drop_connect_rate: stochastic depth rate (survival 0.8 = 0.2); ``None``: the spec's own.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        precision: ``auto`` (fp32 on CPU, bf16/fp16 autocast on CUDA), ``fp32``, ``bf16``, ``fp16``.
        threads: torch CPU threads per run; 0: all cores (under Ray: the trial's CPUs).
    """

    SECTION: ClassVar[str] = "train"

    model: str = "efficientnet_nano"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    lr_batch: int | None = None
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float = 5e-5
    schedule: str = "cosine"
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "auto"
    ema: float = 0.0
    bn_momentum: float | None = None
    dropout: float | None = None
    drop_connect_rate: float | None = None
    device: str = "auto"
    precision: str = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs)
        _positive("train.batch_size", self.batch_size)
        _choice("train.optimizer", self.optimizer, ("sgd", "rmsprop", "adamw"))
        _positive("train.lr", self.lr)
        _positive("train.lr_batch", self.lr_batch)
        _choice("train.schedule", self.schedule, ("cosine", "step", "constant"))
        _positive("train.decay_epochs", self.decay_epochs)
        _positive("train.warmup_epochs", self.warmup_epochs, zero=True)
        _positive("train.weight_decay", self.weight_decay, zero=True)
        _choice("train.augment", self.augment, AUGMENTS)
        _choice("train.precision", self.precision, ("auto", "fp32", "bf16", "fp16"))
        _choice("train.device", self.device, ("auto", "cpu", "cuda"))
        for key in ("momentum", "rmsprop_decay", "label_smoothing", "ema", "dropout", "drop_connect_rate"):
            v = getattr(self, key)
            if v is not None and not 0.0 <= v < 1.0:
                raise ValueError(f"train.{key} must be in [0, 1), got {v}")
        for key in ("decay_rate", "bn_momentum"):
            v = getattr(self, key)
            if v is not None and not 0.0 < v <= 1.0:
                raise ValueError(f"train.{key} must be in (0, 1], got {v}")

    @property
    def scaled_lr(self) -> float:
        """``lr`` scaled linearly from ``lr_batch`` to ``batch_size`` (paper: 0.256 x B / 4096).

        >>> TrainConfig(lr=0.256, lr_batch=4096, batch_size=256).scaled_lr
        0.016
        """
        return self.lr if self.lr_batch is None else self.lr * self.batch_size / self.lr_batch


@dataclass(frozen=True)
class SearchConfig(_Section):
    """The baseline search (MnasNet / EfficientNet §4): maximise ``ACC x (cost / T)^w``.

    Args:
        space: the search space's registered name.
        strategy: the search strategy's name (e.g. ``random``, ``tpe``, ``evolution``).
        trials: architectures to train.
        target_macs: the target T in multiply-adds (paper: 400 M).
        w: the exponent (paper: -0.07).
        constraint: ``soft`` (w both sides of T) or ``hard`` (0 below T, -1 above; MnasNet).
        objective: what T measures: ``macs`` (EfficientNet) or ``latency`` (MnasNet, ms).
        epochs: proxy training epochs per trial (MnasNet: 5).
        resolution: proxy input pixels; ``None``: the space's own.
        data_fraction: fraction of the training split used per trial (proxy task).
        workers: trials in parallel (Ray when > 1).
        storage: an optuna storage URL; ``None``: a SQLite file in the run directory.
        study: the optuna study name (a rerun with the same storage and study resumes).
    """

    SECTION: ClassVar[str] = "search"

    space: str = "mnasnet"
    strategy: str = "random"
    trials: int = 20
    target_macs: float = 400e6
    w: float = -0.07
    constraint: str = "soft"
    objective: str = "macs"
    epochs: int = 5
    resolution: int | None = None
    data_fraction: float = 1.0
    workers: int = 1
    storage: str | None = None
    study: str = "effnas-search"

    def __post_init__(self) -> None:
        _positive("search.trials", self.trials)
        _positive("search.target_macs", self.target_macs)
        if self.w > 0:
            raise ValueError(f"search.w must be <= 0 (a penalty on cost), got {self.w}")
        _choice("search.constraint", self.constraint, ("soft", "hard"))
        _choice("search.objective", self.objective, ("macs", "latency"))
        _positive("search.epochs", self.epochs)
        _positive("search.resolution", self.resolution)
        _fraction("search.data_fraction", self.data_fraction)
        _positive("search.workers", self.workers)


@dataclass(frozen=True)
class GridConfig(_Section):
    """The compound-coefficient grid search at phi (EfficientNet §3.3, step 1).

    Args:
        step: grid step of alpha, beta, gamma (each >= 1).
        tolerance: keep points with ``|alpha * beta^2 * gamma^2 - target| <= tolerance``.
        target: the FLOPs multiplier per unit of phi (paper: 2).
        epochs: training epochs per grid point.
        phi: the compound coefficient the grid is searched at (paper: 1).
    """

    SECTION: ClassVar[str] = "grid"

    step: float = 0.05
    tolerance: float = 0.1
    target: float = 2.0
    epochs: int = 10
    phi: float = 1.0

    def __post_init__(self) -> None:
        _positive("grid.step", self.step)
        _positive("grid.tolerance", self.tolerance)
        if self.target <= 1:
            raise ValueError(f"grid.target must be > 1 (the cost multiplier per phi), got {self.target}")
        _positive("grid.epochs", self.epochs)
        _positive("grid.phi", self.phi)


@dataclass(frozen=True)
class FamilyConfig(_Section):
    """The scaled family (B0...B7 style) and other backbones scaled with the same coefficients.

    Args:
        phis: compound coefficients to train (0 is the baseline).
        seeds: training seeds per member (curves show mean and spread).
        epochs: training epochs per member.
        single_dimension: also train depth-only, width-only and resolution-only scaling of the
            base at the MACs of the compound members (paper Fig. 3, Fig. 8, Table 7).
        baseline_phis: the members whose MACs the single-dimension baselines match; empty: every
            phi >= 1.
        backbones: other registered backbones scaled with the chosen coefficients (Table 3).
        official: also train the official hand-rounded B1... table members where they exist.
        dropout: ``(first, last)``: dropout rising linearly over ``phis`` (paper 0.2 -> 0.5);
            empty: each spec's own.
    """

    SECTION: ClassVar[str] = "family"

    phis: tuple[int, ...] = (0, 1, 2, 3)
    seeds: tuple[int, ...] = (0,)
    epochs: int = 10
    single_dimension: bool = True
    baseline_phis: tuple[int, ...] = ()
    backbones: tuple[str, ...] = ()
    official: bool = False
    dropout: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.phis or any(p < 0 for p in self.phis) or len(set(self.phis)) != len(self.phis):
            raise ValueError(f"family.phis must be distinct integers >= 0, got {list(self.phis)}")
        if not self.seeds:
            raise ValueError("family.seeds must name at least one seed, e.g. [0]")
        _positive("family.epochs", self.epochs)
        if self.dropout and (len(self.dropout) != 2 or not all(0 <= d < 1 for d in self.dropout)):
            raise ValueError(f"family.dropout must be [first, last] in [0, 1) or empty, got {list(self.dropout)}")

    def dropout_for(self, phi: int) -> float | None:
        """The dropout of member ``phi``: linear from first to last over ``phis``.

        >>> FamilyConfig(phis=(0, 1, 2, 3), dropout=(0.2, 0.5)).dropout_for(2)
        0.4
        """
        if not self.dropout:
            return None
        lo, hi = min(self.phis), max(self.phis)
        t = 0.0 if hi == lo else (phi - lo) / (hi - lo)
        return round(self.dropout[0] + t * (self.dropout[1] - self.dropout[0]), 6)


@dataclass(frozen=True)
class RunConfig(_Section):
    """Where and how the whole experiment runs.

    Args:
        out: the run directory (stages write ``search/``, ``grid/``, ``family/``, ``curves/``).
        workers: parallel trials for grid and family (Ray when > 1).
        ray_address: an existing Ray cluster (``auto`` or ``HOST:PORT``); ``None`` starts a local one.
        seed: the experiment's seed (search sampler, data splits).
    """

    SECTION: ClassVar[str] = "run"

    out: str = "runs/experiment"
    workers: int = 1
    ray_address: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("run.out must not be empty: give a run directory")
        _positive("run.workers", self.workers)


SECTIONS: dict[str, type[_Section]] = {
    "data": DataConfig, "train": TrainConfig, "search": SearchConfig, "grid": GridConfig,
    "family": FamilyConfig, "run": RunConfig,
}


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: search -> grid -> family -> curves -> report."""

    name: str = "experiment"
    description: str = ""
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    family: FamilyConfig = dataclasses.field(default_factory=FamilyConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (tuples become lists)."""
        d: dict[str, Any] = {"name": self.name, "description": self.description}
        for sec in SECTIONS:
            d[sec] = getattr(self, sec).to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
        """Build and validate; ``source`` names the file in error messages."""
        if not isinstance(data, dict):
            raise ValueError(f"{source} must be a table of sections, got {type(data).__name__}")
        top = {"name", "description"}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in top:
                kwargs[key] = _coerce(value, str, key, source)
            elif key in SECTIONS:
                kwargs[key] = _section(SECTIONS[key], key, value, source)
            else:
                where = "key" if not isinstance(value, dict) else "section"
                raise ValueError(f"unknown {where} {key!r} in {source}{_suggest(key, [*top, *SECTIONS])}")
        return cls(**kwargs)

    def to_toml(self) -> str:
        """TOML text that :func:`load_config` reads back to an equal config (``None`` keys omitted)."""
        d = self.to_dict()
        lines = [f"{k} = {_toml_value(d[k])}" for k in ("name", "description")]
        for sec in SECTIONS:
            lines += ["", f"[{sec}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in d[sec].items() if v is not None]
        return "\n".join(lines) + "\n"

    def with_overrides(self, overrides: list[str] | tuple[str, ...], *, source: str = "--set") -> ExperimentConfig:
        """A new config with ``section.key=value`` overrides applied (values parsed by field type)."""
        data = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or "." not in key:
                raise ValueError(f"override {item!r} must look like section.key=value, e.g. search.trials=10")
            sec, _, name = key.partition(".")
            if sec not in SECTIONS:
                raise ValueError(f"unknown section {sec!r} in {source} {item!r}{_suggest(sec, list(SECTIONS))}")
            hints = _field_types(SECTIONS[sec])
            if name not in hints:
                raise ValueError(f"unknown key {key!r} in {source}{_suggest(key, [f'{sec}.{k}' for k in hints])}")
            data[sec][name] = _parse_override(raw.strip(), hints[name], key, source)
        return ExperimentConfig.from_dict(data, source=source)


#: The trainer's RMSProp (``experiments.optim.RMSpropTF``) has the paper's decay and epsilon built in.
_TRAINER_RMSPROP = {"rmsprop_decay": 0.9, "rmsprop_eps": 1e-3}


def trainer_config(cfg: ExperimentConfig, *, model: str | dict[str, Any], epochs: int | None = None,
                   seed: int | None = None, resolution: int | None = None, data_fraction: float | None = None,
                   dropout: float | None = None, out_dir: str | None = None) -> dict[str, Any]:
    """The trainer's config dict (``docs/architecture.md``, the trainer contract) for one run.

    ``[data]`` and ``[train]`` give the defaults; the keyword arguments are what a stage varies
    (a search trial's proxy epochs and fraction, a family member's model, seed and dropout).
    ``lr`` is scaled from ``lr_batch`` to ``batch_size``; ``ema`` becomes ``ema_decay``.

    >>> d = trainer_config(ExperimentConfig(), model="tiny", epochs=2, seed=1)
    >>> d["model"], d["epochs"], d["seed"], d["dataset"], d["ema_decay"]
    ('tiny', 2, 1, 'shapes', 0.0)

    Raises:
        ValueError: ``rmsprop_decay`` / ``rmsprop_eps`` differ from the values the trainer's
            RMSProp has built in (0.9, 1e-3).
    """
    t, d = cfg.train, cfg.data
    for key, fixed in _TRAINER_RMSPROP.items():
        if getattr(t, key) != fixed:
            raise ValueError(f"train.{key} = {getattr(t, key)} is not supported: the trainer's RMSProp uses "
                             f"{fixed}; remove the key")
    return {
        "model": model, "dataset": d.dataset,
        "resolution": resolution if resolution is not None else d.resolution,
        "epochs": epochs if epochs is not None else t.epochs,
        "seed": seed if seed is not None else cfg.run.seed,
        "data_fraction": data_fraction if data_fraction is not None else d.data_fraction,
        "val_fraction": d.val_fraction, "batch_size": t.batch_size, "optimizer": t.optimizer,
        "lr": t.scaled_lr, "momentum": t.momentum, "weight_decay": t.weight_decay, "schedule": t.schedule,
        "warmup_epochs": t.warmup_epochs, "decay_rate": t.decay_rate, "decay_epochs": t.decay_epochs,
        "label_smoothing": t.label_smoothing, "ema_decay": t.ema, "augment": t.augment,
        "dropout": dropout if dropout is not None else t.dropout, "drop_connect_rate": t.drop_connect_rate,
        "device": t.device, "precision": t.precision, "out_dir": out_dir,
        **({"threads": t.threads} if t.threads else {}),
        # None means the spec's own; only sent when set (not every trainer version takes it).
        **({"bn_momentum": t.bn_momentum} if t.bn_momentum is not None else {}),
    }


def load_config(ref: str | Path, *, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read a TOML config (a path, or a name in ``experiments/configs/``) and apply overrides.

    Raises:
        ValueError: a missing file, malformed TOML, an unknown section or key, a wrong type or a
            value out of range; one line naming the key and the file.
    """
    path = Path(ref)
    if not path.is_file() and (CONFIG_DIR / f"{ref}.toml").is_file():
        path = CONFIG_DIR / f"{ref}.toml"
    if not path.is_file():
        named = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
        raise ValueError(f"config {str(ref)!r} does not exist: give a TOML path or one of {named}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"malformed TOML in {path.name}: {e}") from None
    cfg = ExperimentConfig.from_dict(data, source=path.name)
    return cfg.with_overrides(overrides) if overrides else cfg


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else f": expected one of {', '.join(sorted(known))}"


def _section(cls: type, sec: str, value: Any, source: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"[{sec}] in {source} must be a table of keys, got {value!r}")
    hints = _field_types(cls)
    kwargs = {}
    for key, v in value.items():
        if key not in hints:
            hint = _suggest(f"{sec}.{key}", [f"{sec}.{k}" for k in hints])
            raise ValueError(f"unknown key '{sec}.{key}' in {source}{hint}")
        kwargs[key] = _coerce(v, hints[key], f"{sec}.{key}", source)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"{e} (in {source})") from None


def _field_types(cls: type) -> dict[str, Any]:
    """The dataclass fields' resolved annotations (``ClassVar``s left out)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` checked against the annotation ``hint`` (and ints widened to floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key, source)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key} in {source} must be an array, e.g. [0, 1], got {value!r}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
    ok = (isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))) or (
        hint is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ValueError(f"{key} in {source} must be {_TYPE_NAMES.get(hint, hint)}, got {value!r}")
    return float(value) if hint is float else value


def _parse_override(raw: str, hint: Any, key: str, source: str) -> Any:
    """Parse a ``--set`` value by the field's type: TOML syntax (``10``, ``1e-3``, ``true``,
    ``[0, 1]``), bare text for strings, ``none`` for optional fields, ``a,b`` or ``[a, b]`` for arrays."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        if raw.lower() in ("none", "null"):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is str:
        return raw
    if typing.get_origin(hint) is tuple:
        items = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        if typing.get_args(hint)[0] is str:
            return tuple(s.strip().strip("'\"") for s in items.split(",") if s.strip())
        raw = f"[{items}]"
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        want = _TYPE_NAMES.get(hint) or f"an array of {_TYPE_NAMES[typing.get_args(hint)[0]].split()[-1]}s, e.g. 1,2"
        raise ValueError(f"{key} in {source} must be {want}, got {raw!r}") from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {v!r} as TOML")
