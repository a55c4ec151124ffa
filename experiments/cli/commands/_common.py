"""What every command shares: flags, their help and the console's conventions. Not a command itself.

Config flags: every flag that sets a config key is registered with that key (``dest="grid.epochs"``)
by :func:`key_flag`, which takes the flag's type, metavar and shown default from the config schema
(``experiments/config``): one :class:`~effnas.experiments.config.schema.ExperimentConfig` is built from
``--config FILE``, ``--set section.key=value`` and the flags, in that order, and handed to the stage
functions; a flag's text is parsed as ``--set`` parses the key's value.

Conventions (README, "Command-line conventions"): ``--out DIR`` is always a directory of results,
a single output file is ``-o FILE`` / ``--output FILE``; every command has ``--quiet`` and
``--verbose`` (:func:`add_console_args`, added to every command by ``cli/main.py``) and an
``examples:`` section (:func:`examples`); tables cut for the console say how many rows are left
and where (:func:`console_table`).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.experiments.config.choices import BUILTIN_DATASETS, DATA_PATHS, ON_DISK_DATASETS
from effnas.experiments.config.schema import CONFIG_DIR, ExperimentConfig, load_config
from effnas.experiments.config.sections import key_field, parse_value
from effnas.nas.study import storage_file
from effnas.scaling import Coefficients, check_product
from effnas.search_spaces.common.errors import UserError

#: Flags that set a config key carry it as their dest; they default to None (not given).
KEY_PREFIXES = ("data.", "train.", "search.", "grid.", "family.", "backbones.", "supernet.", "run.")
#: The built-in config: the defaults flags show (``--config FILE`` replaces them).
DEFAULTS = ExperimentConfig()
#: The named configs, as ``--config NAME`` and ``effnas run NAME`` take them.
PRESETS = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
#: Rows of a table printed on the console before it is cut (``--verbose``: all).
CONSOLE_ROWS = 15


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, except that descriptions and epilogs keep their paragraphs (blank lines) and
    their indented lines (the examples) as written; other lines are wrapped."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for para in text.split("\n\n"):
            prose: list[str] = []
            for line in para.splitlines() + [" "]:  # an indented sentinel flushes the last prose
                if line.startswith(" "):
                    if prose:
                        out.append(textwrap.fill(" ".join(prose), width, initial_indent=indent,
                                                 subsequent_indent=indent))
                        prose = []
                    if line.strip():
                        out.append(indent + line)
                else:
                    prose.append(line.strip())
            out.append("")
        return "\n".join(out).rstrip("\n")


def examples(*items: tuple[str, str]) -> str:
    """The ``examples:`` epilog of a command from ``(command line, what it does)`` pairs, printed as
    shell lines a user can paste (tests parse every one with the parser and run the cheap ones)."""
    lines = ["examples:"]
    for command, what in items:
        lines += [f"  # {what}", f"  {command}"]
    return "\n".join(lines)


def add_console_args(p: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--verbose``, the same on every command (``args.quiet``, ``args.verbose``)."""
    g = p.add_argument_group("console").add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="only errors and the final result: no progress, "
                   "no notes, no intermediate tables")
    g.add_argument("-v", "--verbose", action="store_true", help="more detail: the config's keys that differ from the "
                   "defaults, whole tables, Ray's own output, and the traceback behind an error")


class _OldOut(argparse.Action):
    """``--out FILE``, the old spelling of ``-o/--output FILE`` where a command wrote one file: it
    still works, with a note on stderr."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"effnas: note: {option_string} FILE is deprecated here: write -o/--output FILE (--out names a "
              "directory in every command)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def output_file_arg(p: Any, *, help: str, metavar: str = "FILE", old_out: bool = False, **kw: Any) -> None:
    """``-o FILE`` / ``--output FILE``: the one output file of a command (``args.output``);
    ``old_out`` keeps ``--out FILE`` working as a deprecated spelling."""
    p.add_argument("-o", "--output", metavar=metavar, help=help, **kw)
    if old_out:
        p.add_argument("--out", dest="output", metavar=metavar, action=_OldOut, default=argparse.SUPPRESS,
                       help="deprecated spelling of -o/--output (--out names a directory in every command)")


def console_table(table: pd.DataFrame, file: str | Path, *, verbose: bool = False, rows: int | None = None) -> str:
    """``table`` as console text: its first ``rows`` rows (:data:`CONSOLE_ROWS`) and a line saying
    how many more are in ``file`` (every row with ``verbose``)."""
    rows = CONSOLE_ROWS if rows is None else rows
    if verbose or len(table) <= rows:
        return table.to_string(index=False)
    return (table.head(rows).to_string(index=False)
            + f"\n... {len(table) - rows} more rows in {file} (--verbose prints them all)")


def add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (docs/experiments.md lists every key)",
                             "Defaults shown are the built-in config's; --config replaces them, then flags and "
                             "--set override single keys.")
    g.add_argument("--config", metavar="FILE", help=f"a TOML config file, or a named one: {PRESETS} "
                   "(experiments/config/presets/); its sections give the defaults (default: the built-in config)")
    g.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="set any config key, e.g. --set train.batch_size=64 --set family.phis=0-2; values as the "
                   "flags take them; repeatable (default: none)")


def note_outside(out: str | Path, where: str, paths: dict[str, str | None], *, quiet: bool = False) -> None:
    """One notice line on stderr (not an error) per config path that sends output outside ``out``:
    ``paths`` maps a config key to its value (a path, or a storage URL whose local file counts);
    none with ``quiet``."""
    if quiet:
        return
    root = Path(out).resolve()
    for key, value in paths.items():
        if not value:
            continue
        found = storage_file(value) if key.endswith("storage") else (Path(value), "")
        if found is not None and not found[0].resolve().is_relative_to(root):
            print(f"effnas: note: {key} writes to {str(found[0].resolve())!r}, outside {where}", file=sys.stderr)


def key_flag(g: Any, *names: str, key: str, help: str = "", defaults: ExperimentConfig | None = None,
             **kw: Any) -> argparse.Action:
    """A flag that sets config ``key``. Its type and metavar come from the key's field (``int``:
    ``N``, ``float``: ``X``, a list: ``LIST``; text is parsed as ``--set`` parses it), its help names
    the key and ends with the default of ``defaults`` (the built-in config). A key whose default is
    ``None`` or empty has no value to show: its ``help`` says what happens then ("default: ...")."""
    hint, limits = key_field(ExperimentConfig, key)
    value = _value_at(defaults or DEFAULTS, key)
    if "action" not in kw:
        kw.setdefault("type", _parser(hint, key, names[0], limits))
        if "choices" not in kw:
            kw.setdefault("metavar", _metavar(hint, key, names[0]))
    shown = shown_default(key, value)
    if shown is not None and not kw.get("required") and kw.get("action") not in ("store_true", "store_const"):
        help = f"{help} (default: {shown})".strip()
    return g.add_argument(*names, dest=key, default=None, help=f"{help} [{key}]".replace("%", "%%"), **kw)


def shown_default(key: str, value: Any) -> str | None:
    """A config value as a user would type it, for help texts: ``on``/``off``, ``0-3``, a seed
    count; None for ``None`` and empty lists.

    >>> shown_default("family.phis", (0, 1, 2, 3)), shown_default("grid.seeds", (0,)), shown_default("grid.step", 0.05)
    ('0-3', '1', '0.05')
    """
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        if key.endswith("seeds") and value == tuple(range(len(value))):
            return str(len(value))
        if len(value) > 2 and all(isinstance(v, int) for v in value) and value == tuple(range(value[0], value[-1] + 1)):
            return f"{value[0]}-{value[-1]}"
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _value_at(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _inner(hint: Any) -> Any:
    """``X`` of ``X | None``."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _parser(hint: Any, key: str, flag: str, limits: Any) -> Callable[[str], Any]:
    """The flag's ``type``: the key's ``--set`` parser, its errors as argparse's."""
    def parse(text: str) -> Any:
        try:
            return parse_value(text.strip(), hint, key, flag, limits)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)) from e
    parse.__name__ = key  # argparse names it in "invalid ... value"
    return parse


def _metavar(hint: Any, key: str, flag: str) -> str:
    inner = _inner(hint)
    if typing.get_origin(inner) is tuple:
        return "N|LIST" if key.endswith("seeds") else "LIST"
    if inner is int:
        return "N"
    if inner is float:
        return "X"
    return flag.lstrip("-").split("-")[-1].upper()


def add_data_args(g: Any, *, fraction_key: str = "data.data_fraction") -> None:
    key_flag(g, "--dataset", key="data.dataset",
             help=", ".join((*BUILTIN_DATASETS, *(f"{name}:PATH" for name in ON_DISK_DATASETS))))
    key_flag(g, "--data-fraction", key=fraction_key, help="fraction of the training split")
    key_flag(g, "--loader-threads", key="data.loader_threads",
             help="threads of the main process that decode image folders (instead of --loader-workers)")
    key_flag(g, "--loader-workers", key="data.loader_workers",
             help="DataLoader worker processes that decode image folders (0: the main process)")
    key_flag(g, "--data-path", key="data.path", choices=DATA_PATHS,
             help="image folders: decode once into a shared cache (memory), decode per use (stream), or "
             "by size (auto: memory up to 2 GiB of pixels)")
    key_flag(g, "--strict-data", key="data.strict", action="store_true",
             help="an image file that cannot be decoded stops the run (default: warn, skip and count it)")


def add_run_args(g: Any) -> None:
    key_flag(g, "--workers", key="run.workers", help="runs at once, through Ray when > 1 (pip install 'effnas[ray]')")
    key_flag(g, "--ray-address", key="run.ray_address", help="a running Ray cluster (HOST:PORT or auto; default: a "
             "local Ray, started and stopped by the command; effnas[ray])")
    key_flag(g, "--cpus-per-trial", key="run.cpus_per_trial", help="CPUs per Ray trial (default: cores / workers)")
    key_flag(g, "--gpus-per-trial", key="run.gpus_per_trial", help="GPUs per trial, fractional packs "
             "trials on one GPU, e.g. 0.5 (default: train.devices where the cluster has GPUs; docs/gpu.md)")
    g.add_argument("--resume", action="store_true",
                   help="keep finished runs in --out and continue interrupted ones from their last epoch")


def experiment(args: argparse.Namespace, *, defaults: ExperimentConfig | None = None) -> ExperimentConfig:
    """The config: ``--config`` (or ``defaults``, or the built-in defaults), then the flags, then
    ``--set``; a key given both by a flag and by ``--set`` is an error. With ``--verbose``, one
    line on stderr lists the keys that differ from the built-in defaults."""
    ref = getattr(args, "config", None)
    cfg = load_config(ref) if ref or defaults is None else defaults
    values = {k: v for k, v in vars(args).items() if k.startswith(KEY_PREFIXES) and v is not None}
    if getattr(args, "verbose", False):  # -v/--verbose also shows Ray's own output [run.verbose]
        values["run.verbose"] = True
    overrides = list(getattr(args, "overrides", []) or [])
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in values:
            raise UserError(f"{key} is given twice (by a flag and by --set {item!r}): give it once")
    cfg = cfg.with_values(values)
    cfg = cfg.with_overrides(overrides) if overrides else cfg
    say_config(args, cfg)
    return cfg


def say_config(args: argparse.Namespace, cfg: ExperimentConfig) -> None:
    """With ``--verbose``: one line on stderr with the keys of ``cfg`` that differ from the built-in config."""
    if getattr(args, "verbose", False):
        changed = config_changes(cfg)
        shown = {k: shown_default(k, tuple(v) if isinstance(v, list) else v) for k, v in changed.items()}
        print("effnas: config: " + (", ".join(f"{k}={v}" for k, v in shown.items()) or "the built-in defaults"),
              file=sys.stderr)


def config_changes(cfg: ExperimentConfig, base: ExperimentConfig = DEFAULTS) -> dict[str, Any]:
    """The dotted keys of ``cfg`` whose values differ from ``base``, with ``cfg``'s values.

    >>> config_changes(load_config(None, overrides=["grid.epochs=2"]))
    {'grid.epochs': 2}
    """
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    now, was = flat(cfg.to_dict()), flat(base.to_dict())
    return {k: v for k, v in now.items() if v != was.get(k)}


def add_coefficient_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("coefficients (EfficientNet Eq. 3: depth alpha^phi, width beta^phi, resolution gamma^phi)")
    g.add_argument("--coefficients", metavar="FILE", help="a coefficients.json written by 'effnas grid'")
    g.add_argument("--alpha", type=float, metavar="A", help="depth coefficient (>= 1), with --beta and --gamma")
    g.add_argument("--beta", type=float, metavar="B", help="width coefficient (>= 1)")
    g.add_argument("--gamma", type=float, metavar="G", help="resolution coefficient (>= 1)")
    key_flag(g, "--target", key="grid.target", help="alpha*beta^2*gamma^2 should be near this; 2 doubles the MACs "
             "per phi")


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
