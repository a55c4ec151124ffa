"""The stage sections of an experiment config: ``[search]`` (with ``[search.train]``), ``[grid]``,
``[family]``, ``[backbones]`` and ``[run]``. :mod:`effnas.experiments.config.schema` re-exports them; see there for
how sections are read, validated and overridden."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from effnas.experiments.config import choices, sections
from effnas.experiments.config.choices import DEPTH_ROUNDINGS, GRID_RULES, LATENCY_RUNTIMES, SEARCH_TRAINERS
from effnas.experiments.config.proxy import ProxyConfig
from effnas.experiments.config.sections import MAX_SEED, Section, at_most, choice, fraction, positive
from effnas.search_spaces.common.errors import UserError

#: Largest compound coefficient: ``effnas.scaling.family.MAX_PHI`` (config imports no scaling; a test
#: keeps the two equal). Target 2 doubles the MACs per phi: phi 20 is a million times the base.
MAX_PHI = 20
#: Largest ``grid.eta`` and ``grid.rungs`` (a rung trains ``eta**rung`` times the first's epochs).
MAX_ETA, MAX_RUNGS = 10, 20
#: Largest ``search.trials`` and ``search.population`` (a study holds every trial in one database).
MAX_TRIALS = 1_000_000
#: A list of phis read from text (``--phis 0-3``, ``--set family.phis=0-3``): the limits of
#: :func:`effnas.experiments.config.sections.parse_value`, checked before a range is expanded.
PHI_LIST = {"maximum": MAX_PHI, "what": "phi", "why": "target^phi times the base's MACs"}


def estimator_kind(text: str) -> tuple[str, str]:
    """``search.estimator``/``search.prefilter`` parsed: ``train`` -> ``("train", "")``; ``proxy:NAME`` ->
    ``("proxy", NAME)``; ``supernet:DIR`` -> ``("supernet", DIR)``; ``supernet`` -> ``("supernet", "")``
    (the search trains its own first). A UserError names the choices otherwise; the proxy's name is
    checked against :data:`effnas.nas.zerocost.PROXIES` when the plan is resolved (config imports no torch).

    >>> estimator_kind("proxy:synflow"), estimator_kind("supernet")
    (('proxy', 'synflow'), ('supernet', ''))
    """
    if text == "train":
        return "train", ""
    kind, _, arg = text.partition(":")
    if kind in ("proxy", "supernet") and arg:
        return kind, arg
    if text == "supernet":
        return "supernet", ""
    raise UserError(f"search.estimator must be train, proxy:NAME (e.g. proxy:synflow), supernet:DIR (a supernet "
                     f"trained by 'effnas supernet train') or supernet (train one first), got {text!r}")

@dataclass(frozen=True)
class SearchConfig(Section):
    """The baseline search (MnasNet / EfficientNet §4): maximise ``ACC x (cost / T)^w [x (P / P0)^v]``.

    Args:
        space: a registered search space, or a .json/.toml space file.
        strategy: ``random``, ``tpe``, ``nsga2``, ``evolution`` or ``rl``.
        trials: finished trials wanted; 0 skips the search in ``effnas run`` (``train.model`` is the baseline).
        cost: what T measures: ``macs`` (EfficientNet), ``latency`` (MnasNet; ms at batch 1 here, or a
            benchmark table's) or ``train_step`` (EfficientNetV2: ms of a measured training step; network
            spaces); ``None``: ``macs`` for network spaces, ``latency`` for tables.
        target: T (MACs, ms); ``None``: the base network's MACs or step time, or a table's median latency.
        latency_runtime: what times a latency cost: ``torch`` (eager PyTorch, this device) or
            ``onnxruntime`` (the candidate exported to ONNX, one CPU thread); network spaces only.
        latency_table: a latency lookup table (``python bench/latency_table.py`` builds one for this machine;
            :mod:`effnas.search_spaces.latency_table`): with ``cost = latency`` each candidate's latency is the
            table's prediction instead of a measurement (ops the table lacks are timed once and added to the
            file), and the winner is measured after the search (``latency_check.json``); ``None``: measure
            every candidate. ``torch`` runtime, network spaces only.
        w: the exponent (paper: -0.07).
        v: the exponent of ``(params / P0)^v``; ``None``: -0.05 (EfficientNetV2) with ``train_step``, else 0.
        target_params: P0; ``None``: the space's base network's parameters.
        constraint: ``soft`` (w on both sides of T) or ``hard`` (MnasNet's 0 / -1: over T rejected).
        mode: ``reward`` (one objective) or ``pareto`` (accuracy up, cost down; NSGA-II, TPE, random).
        resolution: candidates' input pixels; ``None``: ``data.resolution``, else the space's.
        population: NSGA-II / evolution population.
        prune: stop weak candidates early from their per-epoch reward (reward mode), with ``pruner``.
        pruner: ``noise_floor`` (median pruning that respects ``noise_floor``), ``median`` (Optuna's),
            ``asha`` (asynchronous successive halving: rungs at 1, 3, 9, ... epochs, the top third of a rung
            goes on) or ``hyperband`` (brackets of successive halving up to the candidates' epochs); the last
            three are multi-fidelity with epochs as the resource and ignore the noise floor (docs/search.md,
            "Pruning").
        noise_floor: the seed-to-seed standard deviation of a candidate's accuracy (a fraction) that
            pruning respects (docs/search.md, "Pruning"); ``None``: the measured default.
        reevaluate: train the top N completed candidates again with another seed after the search and
            pick the winner by the mean of both runs, saying which runners-up it beats (0: off).
        trainer: ``train``, ``surrogate`` (a seeded synthetic accuracy, for testing strategies) or
            ``table`` (a benchmark space's lookup, e.g. ``nasbench201``); ``None``: ``table`` for
            benchmark spaces, ``train`` otherwise.
        estimator: ``train`` (the candidates' ``trainer``) or ``proxy:NAME``: score each candidate
            at initialisation with a zero-cost proxy (``synflow``, ``jacob_cov``, ``naswot``,
            ``grad_norm``, ``snip``, ``grasp``, ``fisher``) on one minibatch of ``search.train.batch_size``
            training images; the trial's ``score`` is its rank among 16 random candidates
            (``docs/zerocost.md``). Benchmark spaces take the images from ``--dataset cifar10:PATH``.
            ``supernet:DIR``: the candidate inherits its weights from the supernet trained into DIR by
            ``effnas supernet train`` (BatchNorm recalibrated), its validation accuracy is the trial's
            ``score`` (``docs/supernet.md``).
        prefilter: ``proxy:NAME`` or ``supernet:DIR``: score each candidate first and train (or
            look up) only those in the top ``prefilter_keep`` share of a reference sample of the
            space; the others are PRUNED with ``status=filtered`` and do not count towards
            ``trials``. ``None``: no pre-filter.
        prefilter_keep: the share of candidates the pre-filter lets through (with ``prefilter``).
        max_failed_share: the search stops with an error when more than this share of trials failed.
        storage: an Optuna storage URL; ``None``: ``search/study.db`` in the run directory.
        study: the study name (a rerun with the same storage and study resumes).
        train: ``[search.train]``, the proxy recipe.
    """

    SECTION: ClassVar[str] = "search"

    space: str = "mnasnet"
    strategy: str = "tpe"
    trials: int = 20
    cost: str | None = None
    target: float | None = None
    latency_runtime: str = "torch"
    latency_table: str | None = None
    w: float = -0.07
    v: float | None = None
    target_params: float | None = None
    constraint: str = "soft"
    mode: str = "reward"
    resolution: int | None = None
    population: int = 20
    prune: bool = True
    pruner: str = "noise_floor"
    noise_floor: float | None = None
    reevaluate: int = 0
    trainer: str | None = None
    estimator: str = "train"
    prefilter: str | None = None
    prefilter_keep: float = 0.1
    max_failed_share: float = 0.5
    storage: str | None = None
    study: str = "search"
    train: ProxyConfig = dataclasses.field(default_factory=ProxyConfig)

    def __post_init__(self) -> None:
        positive("search.trials", self.trials, zero=True)
        at_most("search.trials", self.trials, MAX_TRIALS, "one study database holds them all")
        positive("search.target", self.target)
        if self.w > 0:
            raise UserError(f"search.w must be <= 0 (a penalty on cost), got {self.w}")
        if self.v is not None and self.v > 0:
            raise UserError(f"search.v must be <= 0 (a penalty on parameters), got {self.v}")
        positive("search.target_params", self.target_params)
        if self.cost is not None:
            choice("search.cost", self.cost, choices.SEARCH_COSTS)
        choice("search.latency_runtime", self.latency_runtime, LATENCY_RUNTIMES)
        choice("search.constraint", self.constraint, ("soft", "hard"))
        choice("search.pruner", self.pruner, choices.SEARCH_PRUNERS)
        if not self.prune and self.pruner != "noise_floor":
            raise UserError(f"search.pruner = {self.pruner!r} stops candidates early, but search.prune is off: drop "
                             "--no-prune or --pruner")
        if self.noise_floor is not None and self.pruner != "noise_floor":
            raise UserError(f"search.noise_floor acts on the noise_floor pruner, not {self.pruner!r}: drop one")
        choice("search.mode", self.mode, ("reward", "pareto"))
        if self.trainer is not None:
            choice("search.trainer", self.trainer, SEARCH_TRAINERS)
        estimator_kind(self.estimator)
        if self.prefilter is not None and estimator_kind(self.prefilter)[0] == "train":
            raise UserError("search.prefilter must be proxy:NAME (e.g. proxy:synflow) or supernet:DIR; omit it for no "
                             "pre-filter")
        if self.prefilter is not None and self.estimator != "train":
            raise UserError("search.prefilter filters candidates before training: it needs search.estimator = train")
        if not 0.02 <= self.prefilter_keep <= 1.0:
            raise UserError(f"search.prefilter_keep must be in [0.02, 1] (a share, e.g. 0.1), got "
                             f"{self.prefilter_keep}")
        positive("search.resolution", self.resolution)
        positive("search.population", self.population)
        positive("search.noise_floor", self.noise_floor, zero=True)
        at_most("search.noise_floor", self.noise_floor, 0.5, "the standard deviation of a fraction")
        positive("search.reevaluate", self.reevaluate, zero=True)
        at_most("search.population", self.population, MAX_TRIALS, "one generation is held in memory")
        fraction("search.max_failed_share", self.max_failed_share)
        if not self.study:
            raise UserError("search.study must not be empty")


@dataclass(frozen=True)
class GridConfig(Section):
    """The compound-coefficient grid search (EfficientNet §3.3, step 1).

    Args:
        step: grid step of alpha, beta, gamma (each >= 1).
        tolerance: keep points with ``|alpha * beta^2 * gamma^2 - target| <= tolerance``.
        target: the MACs multiplier per unit of phi (paper: 2).
        phi: the compound coefficient the grid is searched at (paper: 1).
        cost_tolerance: every candidate's realised MACs ratio is brought within this relative
            distance of ``target^phi`` (by its resolution in whole pixels) or listed as not comparable.
        epochs: training epochs per candidate (with ``halving``: of the first rung).
        seeds: seeds per candidate (a list, or a count N: 0..N-1; with ``halving`` the first rung's).
        depth_rounding: repeats rounded to nearest (``round``) or up (``ceil``, TF).
        halving: successive halving: the best ``1/eta`` of a rung's networks (at least 2) train again,
            ``eta`` x longer, with one more seed, until a rung has 2 networks, ``rungs`` ran or the
            budget is spent (docs/scaling.md). Off: one rung.
        eta: with ``halving``, the share a rung keeps (``1/eta``) and its epochs' growth (``x eta``).
        rungs: with ``halving``, the most rungs.
        budget_epochs: the most epochs the grid may train (runs x epochs); ``None``: what the
            schedule needs. Halving leaves out rungs past it; one rung past it is refused.
        rule: ``compound`` searches (alpha, beta, gamma); ``fast`` searches fast scaling's A on
            ``0, step, ..., 1`` (as the coefficients that scale alike; ``tolerance`` is then unused).
    """

    SECTION: ClassVar[str] = "grid"

    step: float = 0.05
    tolerance: float = 0.1
    target: float = 2.0
    phi: float = 1.0
    cost_tolerance: float = 0.05
    epochs: int = 10
    seeds: tuple[int, ...] = (0,)
    depth_rounding: str = "round"
    halving: bool = False
    eta: int = 3
    rungs: int = 3
    budget_epochs: int | None = None
    rule: str = "compound"

    def __post_init__(self) -> None:
        positive("grid.step", self.step)
        choice("grid.rule", self.rule, GRID_RULES)
        if self.step > 1:
            raise UserError(f"grid.step must be in (0, 1], got {self.step}")
        positive("grid.tolerance", self.tolerance, zero=True)
        if self.target <= 1:
            raise UserError(f"grid.target must be > 1 (the cost multiplier per phi), got {self.target}")
        positive("grid.phi", self.phi)
        at_most("grid.phi", self.phi, MAX_PHI, "target^phi times the base's MACs")
        positive("grid.cost_tolerance", self.cost_tolerance)
        positive("grid.epochs", self.epochs)
        sections.distinct_seeds("grid.seeds", self.seeds)
        choice("grid.depth_rounding", self.depth_rounding, DEPTH_ROUNDINGS)
        positive("grid.budget_epochs", self.budget_epochs)
        for key, value, low, high in (("eta", self.eta, 2, MAX_ETA), ("rungs", self.rungs, 1, MAX_RUNGS)):
            if not low <= value <= high:
                raise UserError(f"grid.{key} must be an integer in [{low}, {high}], got {value}")
            if not self.halving and value != 3:  # both default to 3
                raise UserError(f"grid.{key} acts with grid.halving = true: set that, or drop grid.{key}")


@dataclass(frozen=True)
class FamilyConfig(Section):
    """The scaled family (B0...B7 style).

    Args:
        phis: compound coefficients to train (0 is the baseline).
        seeds: training seeds per member (a list, or a count N meaning 0..N-1).
        epochs: training epochs per member; ``None``: ``train.epochs`` (members are full runs).
        single_dimension: also depth-, width- and resolution-only scaling of the base at the
            realised MACs of the compound members (paper Fig. 3, Fig. 8, Table 7).
        baseline_phis: the members the single-dimension baselines match; empty: every phi >= 1.
        official: also train the published B0..B7 table (TF rounding) beside the grid's family.
        dropout: ``[first, last]``: dropout rising linearly over ``phis`` (paper 0.2 -> 0.5);
            empty: the paper's step, the base's dropout + 0.3/7 per phi up to 0.5 (B0 0.2 ... B7
            0.5), for each member and the baselines matched to it.
        cost_tolerance: members' realised MACs ratio within this of ``product^phi`` (by
            resolution), or the table says why not.
        depth_rounding: repeats rounded to nearest (``round``) or up (``ceil``, TF).
        rule: how members spend their MACs: compound, fast:A, resnet-rs[:short], depth, width, resolution,
            exponents:E_D,E_W,E_R or nonuniform:MAX (docs/scaling.md, "Scaling rules"; parsed with the plan).
        rules: more rules trained beside ``rule`` on the same base, data, epochs and seeds (member ``phi`` of each
            spends the MACs of compound's member ``phi``; a network two rules share trains once), compared with
            compound at equal MACs, activations and training time (``effnas compare DIR --rules``).
        latency_batch: after training, every network's inference latency is measured at batch 1 and at this batch
            (``latency_ms_b1``, ``latency_ms_bN`` in family.csv; protocol: :mod:`effnas.search_spaces.timing`).
        latency_runtime: ``torch`` (eager, eval, no_grad) or ``onnxruntime``: torch and onnxruntime beside it
            (``ort_latency_ms_b1``, ``ort_latency_ms_bN``; needs ``effnas[deploy]``).
        latency_threads: intra-op threads while timing (1: one core, whatever else the machine runs).
    """

    SECTION: ClassVar[str] = "family"

    phis: tuple[int, ...] = dataclasses.field(default=(0, 1, 2, 3), metadata=PHI_LIST)
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None
    single_dimension: bool = True
    baseline_phis: tuple[int, ...] = dataclasses.field(default=(), metadata=PHI_LIST)
    official: bool = False
    dropout: tuple[float, ...] = ()
    cost_tolerance: float = 0.1
    depth_rounding: str = "round"
    rule: str = "compound"
    rules: tuple[str, ...] = ()
    latency_batch: int = 16
    latency_runtime: str = "torch"
    latency_threads: int = 1

    def __post_init__(self) -> None:
        if not self.phis or any(p < 0 for p in self.phis) or len(set(self.phis)) != len(self.phis):
            raise UserError(f"family.phis must be distinct integers >= 0, got {list(self.phis)}")
        at_most("family.phis", max(self.phis), MAX_PHI, "target^phi times the base's MACs")
        sections.distinct_seeds("family.seeds", self.seeds)
        positive("family.epochs", self.epochs)
        if not set(self.baseline_phis) <= set(self.phis) or 0 in self.baseline_phis:
            raise UserError(f"family.baseline_phis must be phis >= 1 of family.phis {list(self.phis)}, "
                             f"got {list(self.baseline_phis)}")
        if self.dropout and (len(self.dropout) != 2 or not all(0 <= d < 1 for d in self.dropout)):
            raise UserError(f"family.dropout must be [first, last] in [0, 1) or empty, got {list(self.dropout)}")
        positive("family.cost_tolerance", self.cost_tolerance)
        choice("family.depth_rounding", self.depth_rounding, DEPTH_ROUNDINGS)
        if len(set((self.rule, *self.rules))) != 1 + len(self.rules):
            raise UserError(f"family.rules must be distinct and differ from family.rule {self.rule!r}, "
                             f"got {list(self.rules)}")
        positive("family.latency_batch", self.latency_batch)
        choice("family.latency_runtime", self.latency_runtime, LATENCY_RUNTIMES)
        positive("family.latency_threads", self.latency_threads)

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
class BackbonesConfig(Section):
    """Other backbones scaled with the found coefficients (paper Table 3).

    Args:
        models: registered backbones (``resnet18``, ``mobilenet_v2``, ...); empty: none.
        phi: the compound coefficient (paper Table 3: about 4x MACs, phi = 2 at target 2).
        single_dimension: also depth-, width- and resolution-only at the compound MACs.
        epochs: per network; ``None``: the family's epochs. Seeds: ``family.seeds``.
        resolution: the backbones' base input pixels; ``None``: ``data.resolution``, else their own.
    """

    SECTION: ClassVar[str] = "backbones"

    models: tuple[str, ...] = ()
    phi: int = 2
    single_dimension: bool = True
    epochs: int | None = None
    resolution: int | None = None

    def __post_init__(self) -> None:
        dirs = [Path(m).stem if m.endswith(".json") else m for m in self.models]  # plan.backbone_dir
        if len(set(dirs)) != len(dirs):
            twice = sorted(d for d in set(dirs) if dirs.count(d) > 1)[0]
            raise UserError(f"backbones.models names {twice!r} twice (a spec file's stem is its directory): "
                             "give each backbone once, or rename the spec file")
        positive("backbones.phi", self.phi, zero=True)
        at_most("backbones.phi", self.phi, MAX_PHI, "target^phi times the base's MACs")
        positive("backbones.epochs", self.epochs)
        positive("backbones.resolution", self.resolution)


@dataclass(frozen=True)
class RunConfig(Section):
    """Where and how the whole experiment runs.

    Args:
        out: the run directory (stages write ``search/``, ``grid/``, ``family/``, ``curves/``).
        workers: trials at once for search, grid and family (Ray when > 1).
        ray_address: an existing Ray cluster (``auto`` or ``HOST:PORT``); ``None``: a local one.
        cpus_per_trial: CPUs per Ray trial; ``None``: this machine's cores / workers.
        gpus_per_trial: GPUs per trial (fractional packs trials on one GPU, e.g. 0.5); ``None``:
            ``train.devices`` when the cluster has GPUs and ``train.device`` is not ``cpu``, else 0
            (the rule: docs/gpu.md).
        seed: the experiment's seed (search sampler, proxy training, data splits of single runs).
        verbose: Ray's own console output (banners, Tune's tables); ``False``: effnas's lines and the trials' errors.
    """

    SECTION: ClassVar[str] = "run"

    out: str = "runs/experiment"
    workers: int = 1
    ray_address: str | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    seed: int = 0
    verbose: bool = False

    def __post_init__(self) -> None:
        if not self.out:
            raise UserError("run.out must not be empty: give a run directory")
        positive("run.workers", self.workers)
        positive("run.cpus_per_trial", self.cpus_per_trial)
        positive("run.gpus_per_trial", self.gpus_per_trial, zero=True)
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"run.seed must be in [0, 2**32 - 1] (a generator seed), got {self.seed}")

