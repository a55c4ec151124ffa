"""What an experiment config resolves to, run by run, before anything trains.

``effnas search|grid|family|scale-backbone`` and ``effnas run`` resolve their config here and hand
the result (:mod:`effnas.experiments.pipeline.resolved`) to the stages, which execute it without
coming back: the configuration a trial, candidate or member actually trains with is the one
computed here, and ``tests/experiments/test_schema_walk.py`` can show that every config key
changes it.

* :func:`resolve_search`: a :class:`SearchPlan` (the ``nas.SearchConfig``: space, objective,
  strategy, storage and every candidate's trainer config; the trainer; the search's own supernet);
* :func:`grid_plan`, :func:`family_plan`, :func:`backbone_plan`: a :class:`StagePlan` (table,
  jobs, shared trainer config and runtime);
* :func:`runtime`: workers, Ray address, CPUs and GPUs per trial (the GPU rule:
  :mod:`effnas.experiments.cluster.resources`);
* :func:`resolve`: all of them at once, a :class:`Plan` (``effnas run --plan``). The grid needs the
  search's baseline and the family the grid's coefficients, so ``effnas run`` resolves each stage
  once its inputs exist.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from effnas.experiments.config.schema import ExperimentConfig, JobConfig, TrainConfig
from effnas.experiments.config.stages import estimator_kind
from effnas.experiments.pipeline.objective import search_objective
from effnas.experiments.pipeline.resolved import GridPlan, Plan, Runtime, SearchPlan, StagePlan
from effnas.experiments.pipeline.shared import share_networks
from effnas.nas import CellSpace, SearchConfig, get_space
from effnas.nas.bench_search import median_latency
from effnas.nas.estimators.zerocost import check_name
from effnas.nas.study import stored_objective
from effnas.scaling import (
    PAPER,
    Coefficients,
    Member,
    backbone_comparison,
    candidate_table,
    family,
    family_table,
    grid_candidates,
    matched_baselines,
    scale_backbone,
)
from effnas.scaling.family import member_jobs
from effnas.scaling.grid import candidate_jobs
from effnas.scaling.record import backbone_dir, backbone_key
from effnas.scaling.rules import fast_points, parse_rule, rule_family
from effnas.scaling.rungs import schedule
from effnas.search_spaces import NetworkSpec, load_spec
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.cost import macs
from effnas.search_spaces.latency_table import LatencyTable
from effnas.search_spaces.timing import Protocol

#: Class counts of the data sets the trainer knows (experiments/data/datasets.py), for costs before training.
NUM_CLASSES = {"digits": 10, "mnist5k": 10, "shapes": 10, "cifar10": 10, "cifar100": 100}
#: Keys a stage sets per run; they are not part of a stage's shared trainer config.
PER_RUN = ("model", "resolution", "seed", "out_dir", "resume")


def num_classes(cfg: ExperimentConfig) -> int | None:
    """The data set's class count where it is known without reading it (else the model's own)."""
    return NUM_CLASSES.get(cfg.data.dataset.split(":", 1)[0])


def train_config(cfg: ExperimentConfig, recipe: TrainConfig | None = None, **keys: Any) -> dict[str, Any]:
    """The trainer config shared by a stage's runs: ``[data]`` + ``recipe`` (default ``[train]``)
    + ``keys``, validated as a :class:`JobConfig`, without the per-run keys."""
    job = JobConfig.make(cfg.data, recipe or cfg.train, quiet=True, **keys)
    return {k: v for k, v in job.to_dict().items() if k not in PER_RUN}


def base_spec(cfg: ExperimentConfig, model: str | NetworkSpec | None = None) -> NetworkSpec:
    """The base network (``train.model`` unless a searched one is given) at ``data.resolution``,
    with ``train.dropout`` / ``train.drop_connect_rate`` when set (scaled members inherit them)."""
    m = model if model is not None else cfg.train.model
    spec = m if isinstance(m, NetworkSpec) else load_spec(m, num_classes=num_classes(cfg), resolution=None)
    changes: dict[str, Any] = {}
    if num_classes(cfg) is not None:
        changes["num_classes"] = num_classes(cfg)
    if cfg.data.resolution is not None:
        changes["resolution"] = cfg.data.resolution
    if cfg.train.dropout is not None:
        changes["dropout"] = cfg.train.dropout
    if cfg.train.drop_connect_rate is not None:
        changes["drop_connect_rate"] = cfg.train.drop_connect_rate
    return dataclasses.replace(spec, **changes) if changes else spec


# -- search ------------------------------------------------------------------------------------

def proxy_recipe(cfg: ExperimentConfig) -> TrainConfig:
    """``[train]`` with ``[search.train]`` on top: the recipe of every search candidate."""
    p = cfg.search.train
    warmup = p.warmup_epochs if p.warmup_epochs is not None else round(0.1 * p.epochs, 6)
    return dataclasses.replace(cfg.train, epochs=p.epochs, warmup_epochs=warmup, ema=p.ema,
                               batch_size=p.batch_size or cfg.train.batch_size)


def search_trainer(cfg: ExperimentConfig) -> str:
    """``proxy`` / ``supernet`` when ``search.estimator`` is a zero-cost proxy / a supernet; else
    ``search.trainer``, or by the space: ``table`` for a benchmark table, ``train`` otherwise."""
    table = isinstance(get_space(cfg.search.space), CellSpace)
    kind, _ = estimator_kind(cfg.search.estimator)
    for ref in (cfg.search.estimator, cfg.search.prefilter):
        if ref is not None and estimator_kind(ref)[0] == "proxy":
            check_name(estimator_kind(ref)[1])
    if kind != "train":
        if cfg.search.trainer not in (None, "train"):
            raise UserError(f"search.estimator = {cfg.search.estimator!r} scores candidates without training: drop "
                             f"search.trainer = {cfg.search.trainer!r} (--trainer)")
        if kind == "supernet" and table:
            raise UserError(f"search.estimator = {cfg.search.estimator!r}: a supernet shares MBConv weights; space "
                             f"{cfg.search.space!r} is a benchmark table (use proxy:NAME or its table)")
        return kind
    name = cfg.search.trainer or ("table" if table else "train")
    if table != (name == "table"):
        raise UserError(f"search.trainer = {name!r} does not fit space {cfg.search.space!r}: a benchmark table's "
                         "trainer is its lookup (table); networks train (train) or use the surrogate")
    return name


def search_plan(cfg: ExperimentConfig, out: str | Path, *, resume: bool = False) -> SearchConfig:
    """The search's settings; ``out`` holds ``study.db`` unless ``search.storage`` is set."""
    s = cfg.search
    space = get_space(s.space)
    trainer = search_trainer(cfg)
    if isinstance(space, CellSpace):
        if trainer == "proxy" and ":" not in cfg.data.dataset:
            raise UserError(f"search.estimator = {s.estimator!r} on {space.name} scores real images: give --dataset "
                             f"{cfg.data.dataset}:PATH (the images; {cfg.data.dataset} still names the table)")
        if s.cost == "macs":
            raise UserError(f"space {space.name!r} is a benchmark table without MACs: use search.cost = latency "
                             "(--target-ms MS)")
        if s.latency_runtime != "torch":
            raise UserError(f"space {space.name!r} is a benchmark table: its latencies are the table's, not measured: "
                             "drop search.latency_runtime (--latency-runtime)")
        if s.latency_table is not None:
            raise UserError(f"space {space.name!r} is a benchmark table: its latencies are the table's, not predicted: "
                             "drop search.latency_table (--latency-table)")
        if s.cost == "train_step":
            raise UserError(f"space {space.name!r} is a benchmark table: its candidates are not networks to time; use "
                             "search.cost = latency (--target-ms MS)")
        cost, resolution = "latency", None
        table = space.table(cfg.data.dataset)

        target: float | None = s.target or median_latency(table)
        base = None
    else:
        cost = s.cost or "macs"
        resolution = s.resolution or cfg.data.resolution or space.resolution
        target = s.target
        if target is None and cost == "latency":
            raise UserError("search.cost = 'latency' needs search.target in milliseconds (--target-ms MS)")
        if s.latency_runtime != "torch" and cost != "latency":
            raise UserError(f"search.latency_runtime = {s.latency_runtime!r} times a latency cost, but search.cost is "
                             f"{cost!r}: give --target-ms MS (search.cost = latency) or drop --latency-runtime")
        if s.latency_table is not None:
            if cost != "latency" or s.latency_runtime != "torch":
                raise UserError(f"search.latency_table predicts a torch latency cost, but search.cost is {cost!r} with "
                                 f"runtime {s.latency_runtime!r}: give --target-ms MS (search.cost = latency) with "
                                 "--latency-runtime torch, or drop --latency-table")
            if cfg.run.workers > 1 or cfg.run.ray_address:
                raise UserError("search.latency_table is read and extended by the search's own process: with "
                                 "--workers or --ray-address each worker would time ops on its own copy (and its own "
                                 "machine); run the search with --workers 1, or drop --latency-table")
            LatencyTable.load(s.latency_table).check_machine()  # a missing, broken or foreign file: one line
        base = space.to_spec({}, num_classes=num_classes(cfg), resolution=resolution)
        if target is None and cost == "macs":
            target = float(macs(base))
    storage = s.storage or f"sqlite:///{(Path(out) / 'study.db').resolve()}"
    objective = search_objective(cfg, cost, target, base, stored_objective(storage, s.study) if resume else None)
    if trainer == "train":
        train = train_config(cfg, proxy_recipe(cfg), data_fraction=s.train.data_fraction)
        del train["track"]  # candidates have no run directory to track: the study records them
    elif trainer == "proxy":  # one minibatch of the training split (effnas.experiments.estimators.proxy)
        train = {"dataset": cfg.data.dataset, "estimator": s.estimator,
                 "batch_size": s.train.batch_size or cfg.train.batch_size, "val_fraction": cfg.data.val_fraction,
                 "data_fraction": s.train.data_fraction, "threads": cfg.train.threads}
    elif trainer == "supernet":  # calibration batches and the validation split (effnas.experiments.estimators.supernet)
        train = {"dataset": cfg.data.dataset, "estimator": s.estimator, "path": cfg.data.path,
                 "strict": cfg.data.strict, "crop_pct": cfg.data.crop_pct,
                 "batch_size": s.train.batch_size or cfg.train.batch_size, "val_fraction": cfg.data.val_fraction,
                 "eval_batch_size": cfg.train.eval_batch_size, "threads": cfg.train.threads}
    else:  # no training: what the surrogate or the table reads
        train = {"dataset": cfg.data.dataset, "epochs": s.train.epochs}
    if s.prefilter is not None:  # effnas.experiments.estimators.proxy.Prefiltered reads and removes it
        if isinstance(space, CellSpace) and s.prefilter.startswith("supernet:"):
            raise UserError(f"search.prefilter = {s.prefilter!r}: a supernet shares MBConv weights; space "
                             f"{space.name!r} is a benchmark table (use proxy:NAME)")
        if isinstance(space, CellSpace) and ":" not in cfg.data.dataset:
            raise UserError(f"search.prefilter = {s.prefilter!r} on {space.name} scores real images: give --dataset "
                             f"{cfg.data.dataset}:PATH (the images; {cfg.data.dataset} still names the table)")
        train["prefilter"] = {"proxy": s.prefilter, "keep": s.prefilter_keep,
                              "batch_size": s.train.batch_size or cfg.train.batch_size}
    return SearchConfig(space=space, objective=objective, strategy=s.strategy, trials=max(s.trials, 1),
                        seed=cfg.run.seed, num_classes=num_classes(cfg), resolution=resolution, storage=storage,
                        study_name=s.study, resume=resume, prune=s.prune, pruner=s.pruner,
                        population_size=s.population,
                        train={**train, "seed": cfg.run.seed}, max_failed_share=s.max_failed_share,
                        train_defaults=JobConfig().to_dict(), reevaluate=s.reevaluate,
                        **({} if s.noise_floor is None else {"noise_floor": s.noise_floor}))


# -- grid ----------------------------------------------------------------------------------------

def grid_points(cfg: ExperimentConfig) -> list[tuple[str | None, Coefficients]]:
    """The grid's points with their scaling rule: compound's (alpha, beta, gamma) lattice (rule
    ``None``), or with ``grid.rule = "fast"`` fast scaling's A on ``0, step, ..., 1`` as coefficients
    (``fast:A``; :func:`effnas.scaling.rules.fast_points`)."""
    g = cfg.grid
    if g.rule == "fast":
        return [(f"fast:{a:g}", c) for a, c in fast_points(g.step, g.target)]
    return [(None, c) for c in grid_candidates(step=g.step, target=g.target, tolerance=g.tolerance)]


def grid_plan(cfg: ExperimentConfig, base: NetworkSpec) -> GridPlan:
    """The grid's candidate table (every candidate, comparable or not, with its realised cost and
    the distinct network it builds), the first rung's training jobs (each distinct comparable
    network once), the rungs (``grid.halving``, ``eta``, ``rungs``, ``budget_epochs``) and the
    shared trainer config."""
    g = cfg.grid
    points = grid_points(cfg)
    cands = [c for _, c in points]
    table, specs = candidate_table(base, cands, phi=g.phi, target=g.target, cost_tolerance=g.cost_tolerance,
                                   depth_rounding=g.depth_rounding)
    if g.rule == "fast":  # each point's rule, in grid.csv and coefficients.json (the table keeps their order)
        table.insert(0, "rule", [rule for rule, _ in points])
    jobs = candidate_jobs(cands, specs, table, g.seeds)
    networks = len({j.info["network"] for j in jobs})
    rungs = schedule(networks, epochs=g.epochs, seeds=g.seeds, halving=g.halving, eta=g.eta, rungs=g.rungs,
                     budget_epochs=g.budget_epochs) if networks else None
    tc = train_config(cfg, dataclasses.replace(cfg.train, epochs=g.epochs, dropout=None, drop_connect_rate=None))
    return GridPlan(table, jobs, tc, runtime(cfg), phi=g.phi, target=g.target, cost_tolerance=g.cost_tolerance,
                    base=base.name, schedule=rungs)


# -- family ------------------------------------------------------------------------------------

def family_members(cfg: ExperimentConfig, base: NetworkSpec, coefficients: Coefficients | None) -> list[Member]:
    """The members of ``family.rule`` (compound by default; with ``family.dropout``) and of each of
    ``family.rules``, the official table's when ``family.official``, and the single-dimension
    baselines (matched to ``family.rule``'s members) when ``family.single_dimension``."""
    f = cfg.family
    members = rule_members(cfg, base, coefficients, f.rule)
    if not members and not f.official:
        raise UserError("the family needs coefficients (a grid's coefficients.json, or alpha/beta/gamma) "
                         "or family.official = true")
    official = family(base, f.phis, official=True) if f.official else []
    baselines: list[Member] = []
    if f.single_dimension:
        wanted = set(f.baseline_phis) or {p for p in f.phis if p >= 1}
        targets = [m for m in (members or official) if m.phi in wanted]
        baselines = matched_baselines(base, targets, depth_rounding=f.depth_rounding)
    others: list[Member] = []
    for text in f.rules:
        more = rule_members(cfg, base, coefficients, text)
        if not more:
            raise UserError(f"family.rules has {text!r}: compound members need coefficients (a grid's "
                             "coefficients.json, or alpha/beta/gamma)")
        others += more
    return members + official + baselines + others


def rule_members(cfg: ExperimentConfig, base: NetworkSpec, coefficients: Coefficients | None,
                 text: str) -> list[Member]:
    """Members ``family.phis`` of the rule ``text`` (none for compound without coefficients)."""
    f = cfg.family
    rule = parse_rule(text)
    if not rule.is_compound:
        members = rule_family(base, f.phis, rule, coefficients=coefficients, growth=cfg.grid.target,
                              depth_rounding=f.depth_rounding, cost_tolerance=f.cost_tolerance)
    elif coefficients is not None:
        members = family(base, f.phis, coefficients=coefficients, depth_rounding=f.depth_rounding,
                         cost_tolerance=f.cost_tolerance)
    else:
        return []
    return [_with_dropout(m, f.dropout_for(m.phi)) for m in members]


def _with_dropout(m: Member, dropout: float | None) -> Member:
    if dropout is None:
        return m
    return dataclasses.replace(m, spec=dataclasses.replace(m.spec, dropout=dropout))


def family_plan(cfg: ExperimentConfig, base: NetworkSpec, coefficients: Coefficients | None) -> StagePlan:
    members = family_members(cfg, base, coefficients)
    jobs, shared = share_networks(member_jobs(members, cfg.family.seeds))
    tc = train_config(cfg, dataclasses.replace(cfg.train, epochs=cfg.family.epochs or cfg.train.epochs, dropout=None,
                                               drop_connect_rate=None))
    return StagePlan(family_table(members), jobs, tc, runtime(cfg), timing=timing_protocol(cfg), shared=shared)


def timing_protocol(cfg: ExperimentConfig) -> dict[str, Any]:
    """How the family's and the backbones' trained networks are timed (``family.latency_*``)."""
    f = cfg.family
    return Protocol(batch=f.latency_batch, threads=f.latency_threads, runtime=f.latency_runtime).to_dict()


# -- backbones ---------------------------------------------------------------------------------

def backbone_members(cfg: ExperimentConfig, name: str, coefficients: Coefficients) -> list[Member]:
    b = cfg.backbones
    kw: dict[str, Any] = {"coefficients": coefficients, "phi": b.phi, "depth_rounding": cfg.family.depth_rounding,
                          "num_classes": num_classes(cfg), "resolution": b.resolution or cfg.data.resolution}
    return backbone_comparison(name, **kw) if b.single_dimension else [scale_backbone(name, **kw)]


def backbone_plan(cfg: ExperimentConfig, name: str, coefficients: Coefficients) -> StagePlan:
    """One backbone's compound (and single-dimension) networks at ``backbones.phi``; they keep
    their own dropout and stochastic depth."""
    rows = backbone_members(cfg, name, coefficients)
    stem, phi = rows[0].spec.name, cfg.backbones.phi
    jobs = member_jobs(rows, cfg.family.seeds, key=lambda m, s: backbone_key(stem, m, phi, s))
    epochs = cfg.backbones.epochs or cfg.family.epochs or cfg.train.epochs
    tc = train_config(cfg, dataclasses.replace(cfg.train, epochs=epochs, dropout=None, drop_connect_rate=None))
    return StagePlan(family_table(rows), jobs, tc, runtime(cfg), timing=timing_protocol(cfg))


# -- runtime -------------------------------------------------------------------------------------

def runtime(cfg: ExperimentConfig) -> Runtime:
    """How runs are executed: in this process (1 worker, no cluster) or as Ray trials."""
    r = cfg.run
    return Runtime(workers=r.workers, ray_address=r.ray_address, cpus_per_trial=r.cpus_per_trial,
                   gpus_per_trial=r.gpus_per_trial, verbose=r.verbose)


# -- everything at once --------------------------------------------------------------------------

def supernet_plan(cfg: ExperimentConfig) -> dict[str, Any] | None:
    """What ``[supernet]`` does to the search: None without a supernet estimator or pre-filter;
    the BatchNorm calibration of every candidate; and for ``supernet`` without a directory, the
    training of the search's own supernet (``search/supernet``)."""
    uses = [estimator_kind(v) for v in (cfg.search.estimator, cfg.search.prefilter) if v is not None]
    paths = [arg for kind, arg in uses if kind == "supernet"]
    if not paths:
        return None
    sn = cfg.supernet
    d: dict[str, Any] = {"calibration_batches": sn.calibration_batches, "paths": paths}
    if "" in paths:
        d["train"] = {"epochs": sn.epochs, "sampling": sn.sampling, "space": cfg.search.space,
                      **({"sandwich_random": sn.sandwich_random} if sn.sampling == "sandwich" else {})}
    return d


def own_supernet_path(cfg: ExperimentConfig, out: Path) -> tuple[ExperimentConfig, Path | None]:
    """``search.estimator`` / ``search.prefilter`` = ``supernet`` (no directory): the search's own
    supernet, ``out/supernet``; the config then points at it."""
    keys = [k for k, v in (("estimator", cfg.search.estimator), ("prefilter", cfg.search.prefilter))
            if v is not None and estimator_kind(v) == ("supernet", "")]
    if not keys:
        return cfg, None
    path = out / "supernet"
    search = cfg.search
    for k in keys:
        search = dataclasses.replace(search, **{k: f"supernet:{path}"})  # type: ignore[arg-type]
    return dataclasses.replace(cfg, search=search), path


def resolve_search(cfg: ExperimentConfig, out: str | Path, *, resume: bool = False) -> SearchPlan:
    """The search of ``cfg`` into ``out``, every setting checked (before a supernet trains)."""
    if cfg.search.trials < 1:
        raise UserError("search.trials is 0: nothing to search (give --trials N, or use train.model as the baseline)")
    search_cfg, own = own_supernet_path(cfg, Path(out))
    return SearchPlan(cfg=search_cfg, out=Path(out), settings=search_plan(search_cfg, out, resume=resume),
                      trainer=search_trainer(cfg), runtime=runtime(cfg), supernet=supernet_plan(cfg),
                      own_supernet=own)


def resolve(cfg: ExperimentConfig, *, baseline: str | NetworkSpec | None = None,
            coefficients: Coefficients | None = None) -> Plan:
    """What every stage of ``cfg`` will run: the search's settings and a candidate's trainer
    config, and the per-run trainer config of every grid candidate, family member and backbone
    network. ``baseline`` stands for the search's result (default ``train.model``),
    ``coefficients`` for the grid's (default the paper's 1.2, 1.1, 1.15).

    ``effnas run CONFIG --plan`` prints its :meth:`Plan.to_dict`; the schema-walk test checks that
    every key changes it.
    """
    out = Path(cfg.run.out)
    coeffs = coefficients or PAPER
    search = resolve_search(cfg, out / "search") if cfg.search.trials > 0 else None
    base = base_spec(cfg, baseline)
    return Plan(name=cfg.name, description=cfg.description, runtime=runtime(cfg), search=search,
                grid=grid_plan(cfg, base), family=family_plan(cfg, base, coeffs),
                backbones={name: (backbone_dir(name), backbone_plan(cfg, name, coeffs))
                           for name in cfg.backbones.models},
                out=out)
