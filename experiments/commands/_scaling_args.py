"""Arguments and helpers shared by the scaling commands (``grid``, ``family``, ``scale-backbone``):
coefficients, training options, the trainer and the executor. Not a command itself."""

from __future__ import annotations

import argparse
import json
from typing import Any

from scaling import PAPER, Coefficients, check_product
from scaling.runner import ExecutorFn, TrainerFn


def add_coefficient_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("coefficients (EfficientNet Eq. 3: depth alpha^phi, width beta^phi, resolution gamma^phi)")
    g.add_argument("--coefficients", metavar="FILE", help="a coefficients.json written by 'effnas grid'")
    g.add_argument("--alpha", type=float, help="depth coefficient (>= 1)")
    g.add_argument("--beta", type=float, help="width coefficient (>= 1)")
    g.add_argument("--gamma", type=float, help="resolution coefficient (>= 1)")
    g.add_argument("--target", type=float, default=2.0,
                   help="alpha*beta^2*gamma^2 should be near this (default 2: MACs double per phi)")
    g.add_argument("--depth-rounding", choices=("round", "ceil"), default="round",
                   help="repeats rounded to nearest (default; realised MACs track nominal) or up (TF)")


def coefficients_from(args: argparse.Namespace, *, default: Coefficients | None = None) -> Coefficients | None:
    """The coefficients given by ``--coefficients`` or ``--alpha/--beta/--gamma`` (checked against
    ``--target``), else ``default``."""
    given = [n for n in ("alpha", "beta", "gamma") if getattr(args, n) is not None]
    if args.coefficients and given:
        raise ValueError(f"give either --coefficients FILE or --{given[0]} (with the others), not both")
    if args.coefficients:
        c = Coefficients.load(args.coefficients)
    elif given:
        missing = [n for n in ("alpha", "beta", "gamma") if n not in given]
        if missing:
            raise ValueError(f"--{missing[0]} is missing: give --alpha, --beta and --gamma together")
        c = Coefficients(args.alpha, args.beta, args.gamma)
    else:
        return default
    check_product(c, target=args.target)
    return c


def add_training_args(p: argparse.ArgumentParser, *, optional: bool = True) -> None:
    g = p.add_argument_group("training (through experiments.training; see docs/architecture.md)")
    if optional:
        g.add_argument("--train", action="store_true", help="train every network (needs --dataset and --out)")
    g.add_argument("--dataset", help="digits, mnist5k, shapes, cifar10:PATH, ... (see 'effnas train --help')")
    g.add_argument("--epochs", type=int, default=4, help="epochs per network (default 4)")
    g.add_argument("--data-fraction", type=float, default=1.0, help="fraction of the training split (proxy training)")
    g.add_argument("--seeds", type=int, default=1, help="seeds per network, 0..N-1 (default 1)")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="another trainer config key (JSON value), e.g. --option batch_size=128; repeatable")
    g.add_argument("--workers", type=int, default=1, help="parallel trials through Ray when > 1 (default 1)")
    g.add_argument("--ray-address", help="a running Ray cluster to use instead of a local one")
    g.add_argument("--resume", action="store_true",
                   help="keep finished runs in --out and continue interrupted ones from their last epoch")


def train_config(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer config shared by every run (model, resolution, seed, out_dir are per run)."""
    if not args.dataset:
        raise ValueError("--dataset is required for training, e.g. --dataset shapes")
    for name in ("epochs", "seeds", "workers"):
        v = getattr(args, name)
        if v < 1:
            raise ValueError(f"--{name} must be a positive integer, got {v}")
    if not 0 < args.data_fraction <= 1:
        raise ValueError(f"--data-fraction must be in (0, 1], got {args.data_fraction}")
    config: dict[str, Any] = {"dataset": args.dataset, "epochs": args.epochs, "data_fraction": args.data_fraction}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {item!r} is not KEY=VALUE, e.g. --option batch_size=128")
        try:
            config[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            config[key.strip()] = value
    return config


def trainer() -> TrainerFn:
    """``experiments.training.train_fn``, imported only when training is asked for."""
    try:
        from experiments.training import train_fn
    except ImportError as e:
        raise ValueError(f"training needs experiments.training, which this installation lacks ({e})") from None
    return train_fn  # type: ignore[no-any-return]


def executor(args: argparse.Namespace) -> ExecutorFn | None:
    """Ray's ``run_configs`` when ``--workers > 1`` or ``--ray-address``; else sequential (None)."""
    if args.workers <= 1 and not args.ray_address:
        return None
    from experiments.ray_backend import executor as ray_executor

    return ray_executor(args.workers, args.ray_address)


def fmt_count(n: float) -> str:
    """``1234567 -> '1.23M'``.

    >>> fmt_count(1_234_567), fmt_count(37_745_884_192), fmt_count(950)
    ('1.23M', '37.75G', '950')
    """
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def seeds(args: argparse.Namespace) -> list[int]:
    return list(range(args.seeds))


def default_coefficients() -> Coefficients:
    return PAPER
