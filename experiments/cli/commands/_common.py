"""Arguments shared by the commands: every flag that sets a config key is registered with that
key (``dest="grid.epochs"``), so one :class:`~effnas.experiments.config.schema.ExperimentConfig` is built from
``--config FILE``, ``--set section.key=value`` and the flags, in that order, and handed to the
stage functions. Not a command itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from effnas.experiments.config.choices import BUILTIN_DATASETS, DATA_PATHS, ON_DISK_DATASETS
from effnas.experiments.config.schema import ExperimentConfig, load_config
from effnas.nas.study import storage_file
from effnas.scaling import Coefficients, check_product, parse_phis
from effnas.search_spaces.common.errors import UserError

#: Flags that set a config key carry it as their dest; they default to None (not given).
KEY_PREFIXES = ("data.", "train.", "search.", "grid.", "family.", "backbones.", "supernet.", "run.")


def add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (docs/experiments.md lists every key)")
    g.add_argument("--config", metavar="TOML", help="a config file, or demo, cifar10, paper: its sections give "
                   "the defaults (flags and --set override them)")
    g.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="set any config key, e.g. --set train.batch_size=64 --set search.train.epochs=2; repeatable")


def note_outside(out: str | Path, where: str, paths: dict[str, str | None]) -> None:
    """One notice line on stderr (not an error) per config path that sends output outside ``out``:
    ``paths`` maps a config key to its value (a path, or a storage URL whose local file counts)."""
    root = Path(out).resolve()
    for key, value in paths.items():
        if not value:
            continue
        found = storage_file(value) if key.endswith("storage") else (Path(value), "")
        if found is not None and not found[0].resolve().is_relative_to(root):
            print(f"effnas: note: {key} writes to {str(found[0].resolve())!r}, outside {where}", file=sys.stderr)


def key_flag(g: Any, *names: str, key: str, **kw: Any) -> None:
    """A flag that sets config ``key`` (its help names the key)."""
    help_ = kw.pop("help", "")
    g.add_argument(*names, dest=key, default=None, help=f"{help_} [{key}]".strip(), **kw)


def seeds_arg(text: str) -> int | tuple[int, ...]:
    """``3`` (a count: 0, 1, 2) or ``0,5`` (a list).

    >>> seeds_arg("2"), seeds_arg("0,5")
    (2, (0, 5))
    """
    try:
        parts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a seed count such as 2 or a list such as 0,1, got {text!r}") from None
    if not parts:
        raise argparse.ArgumentTypeError("expected a seed count such as 2 or a list such as 0,1")
    return parts[0] if len(parts) == 1 and "," not in text else tuple(parts)


def phis_arg(text: str) -> tuple[int, ...]:
    """``0-3`` or ``0,2,4`` as a tuple of phis."""
    try:
        return tuple(parse_phis(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def add_data_args(g: Any, *, fraction_key: str = "data.data_fraction") -> None:
    key_flag(g, "--dataset", key="data.dataset",
             help=", ".join((*BUILTIN_DATASETS, *(f"{name}:PATH" for name in ON_DISK_DATASETS))))
    key_flag(g, "--data-fraction", key=fraction_key, type=float, help="fraction of the training split")
    key_flag(g, "--loader-threads", key="data.loader_threads", type=int,
             help="threads of the main process that decode image folders (instead of --loader-workers; default 0)")
    key_flag(g, "--loader-workers", key="data.loader_workers", type=int,
             help="DataLoader worker processes that decode image folders (0: the main process)")
    key_flag(g, "--data-path", key="data.path", choices=DATA_PATHS,
             help="image folders: decode once into a shared cache (memory), decode per use (stream), or "
             "by size (auto: memory up to 2 GiB of pixels)")
    key_flag(g, "--strict-data", key="data.strict", action="store_true",
             help="an image file that cannot be decoded stops the run (default: warn, skip and count it)")


def add_run_args(g: Any) -> None:
    key_flag(g, "--workers", key="run.workers", type=int, help="runs at once, through Ray when > 1 (default 1)")
    key_flag(g, "--ray-address", key="run.ray_address", help="a running Ray cluster (HOST:PORT or auto)")
    key_flag(g, "--cpus-per-trial", key="run.cpus_per_trial", type=float, help="CPUs per Ray trial "
             "(default: cores / workers)")
    key_flag(g, "--gpus-per-trial", key="run.gpus_per_trial", type=float, help="GPUs per trial, fractional packs "
             "trials on one GPU, e.g. 0.5 (default: train.devices where the cluster has GPUs; docs/gpu.md)")
    key_flag(g, "--verbose", key="run.verbose", action="store_true", help="show Ray's own output (its start-up "
             "lines, Tune's tables and result directory); default: only effnas's lines and the trials' errors")
    g.add_argument("--resume", action="store_true",
                   help="keep finished runs in --out and continue interrupted ones from their last epoch")


def experiment(args: argparse.Namespace, *, defaults: ExperimentConfig | None = None) -> ExperimentConfig:
    """The config: ``--config`` (or ``defaults``, or the built-in defaults), then the flags, then
    ``--set``; a key given both by a flag and by ``--set`` is an error."""
    ref = getattr(args, "config", None)
    cfg = load_config(ref) if ref or defaults is None else defaults
    values = {k: v for k, v in vars(args).items() if k.startswith(KEY_PREFIXES) and v is not None}
    overrides = list(getattr(args, "overrides", []) or [])
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in values:
            raise UserError(f"{key} is given twice (by a flag and by --set {item!r}): give it once")
    cfg = cfg.with_values(values)
    return cfg.with_overrides(overrides) if overrides else cfg


def add_coefficient_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("coefficients (EfficientNet Eq. 3: depth alpha^phi, width beta^phi, resolution gamma^phi)")
    g.add_argument("--coefficients", metavar="FILE", help="a coefficients.json written by 'effnas grid'")
    g.add_argument("--alpha", type=float, help="depth coefficient (>= 1)")
    g.add_argument("--beta", type=float, help="width coefficient (>= 1)")
    g.add_argument("--gamma", type=float, help="resolution coefficient (>= 1)")
    key_flag(g, "--target", key="grid.target", type=float,
             help="alpha*beta^2*gamma^2 should be near this (default 2: MACs double per phi)")


def coefficients_from(args: argparse.Namespace, cfg: ExperimentConfig) -> Coefficients | None:
    """The coefficients of ``--coefficients`` or ``--alpha/--beta/--gamma`` (checked against
    ``grid.target``), else None."""
    given = [n for n in ("alpha", "beta", "gamma") if getattr(args, n) is not None]
    if args.coefficients and given:
        raise UserError(f"give either --coefficients FILE or --{given[0]} (with the others), not both")
    if args.coefficients:
        c = Coefficients.load(args.coefficients)
    elif given:
        missing = [n for n in ("alpha", "beta", "gamma") if n not in given]
        if missing:
            raise UserError(f"--{missing[0]} is missing: give --alpha, --beta and --gamma together")
        c = Coefficients(args.alpha, args.beta, args.gamma)
    else:
        return None
    check_product(c, target=cfg.grid.target)
    return c


def fmt_count(n: float) -> str:
    """``1234567 -> '1.23M'``.

    >>> fmt_count(1_234_567), fmt_count(37_745_884_192), fmt_count(950)
    ('1.23M', '37.75G', '950')
    """
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"
