"""Typed config sections from plain data: the machinery behind :mod:`effnas.experiments.config.schema`.

A section is a frozen dataclass deriving from :class:`Section`; its annotations are the schema.
Types understood: ``int``, ``float`` (integers are accepted), ``bool``, ``str``, ``tuple[T, ...]``
(a TOML array), ``X | None`` (omit the key in TOML, or ``--set key=none``) and a nested section
(a TOML sub-table such as ``[search.train]``). A field named ``seeds`` also takes a count: ``3``
means ``[0, 1, 2]``. Every error is a one-line ``UserError`` naming the key and the source, with
a "did you mean" suggestion for unknown keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from effnas.search_spaces.common import ranges
from effnas.search_spaces.common.errors import UserError, absent, user_file

#: Largest seed count (``seeds = N``) and list: each seed is a full training run per network.
MAX_SEEDS = 1000
#: Seeds are numpy / torch generator seeds: unsigned 32-bit.
MAX_SEED = 2**32 - 1
#: Integers are 64-bit (TOML's range; a larger flag value would overflow torch and numpy).
MAX_INT = 2**63 - 1


class Section:
    """``to_dict`` / ``from_dict`` shared by the sections; ``SECTION`` is the TOML table's name."""

    SECTION: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (tuples become lists, nested sections dicts)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> Any:
        """Build and validate from plain data; unknown keys and wrong types are one-line errors."""
        return section(cls, cls.SECTION, data, source)


def _plain(v: Any) -> Any:
    if isinstance(v, Section):
        return v.to_dict()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else f": expected one of {', '.join(sorted(known))}"


def field_types(cls: type) -> dict[str, Any]:
    """The dataclass fields' resolved annotations (``ClassVar``s left out)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def is_section(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Section)


def section(cls: type, sec: str, value: Any, source: str) -> Any:
    """``cls`` built from the table ``value`` (the TOML section ``sec`` of ``source``)."""
    if not isinstance(value, dict):
        raise UserError(f"[{sec}] in {source} must be a table of keys, got {value!r}")
    hints = field_types(cls)
    kwargs = {}
    for key, v in value.items():
        if key not in hints:
            hint = suggest(f"{sec}.{key}", [f"{sec}.{k}" for k in hints])
            raise UserError(f"unknown key '{sec}.{key}' in {source}{hint}")
        kwargs[key] = coerce(v, hints[key], f"{sec}.{key}", source)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise UserError(f"{e} (in {source})") from e


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` checked against the annotation ``hint`` (and ints widened to floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:  # e.g. str | dict: accepted as given
            return value
        return coerce(value, inner[0], key, source)
    if is_section(hint):
        return section(hint, key, value, source)
    if origin is tuple:
        if key.endswith("seeds") and isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_SEEDS:
                raise UserError(f"{key} in {source} must be a seed count >= 1 and <= {MAX_SEEDS} or a list of seeds, "
                                 f"got {value}")
            return tuple(range(value))
        if not isinstance(value, list | tuple):
            raise UserError(f"{key} in {source} must be an array, e.g. [0, 1], got {value!r}")
        if key.endswith("seeds") and len(value) > MAX_SEEDS:
            raise UserError(f"{key} in {source} lists {len(value)} seeds, more than {MAX_SEEDS}: give fewer")
        return tuple(coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
    if hint is Any:
        return value
    ok = (isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))) or (
        hint is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise UserError(f"{key} in {source} must be {_TYPE_NAMES.get(hint, hint)}, got {value!r}")
    if hint is float and (value != value or value in (float("inf"), float("-inf"))):
        raise UserError(f"{key} in {source} must be a finite number, got {value}")
    if hint is int and not -MAX_INT <= value <= MAX_INT:
        raise UserError(f"{key} in {source} must be an integer within +-(2**63 - 1), got {value}")
    return float(value) if hint is float else value


def parse_value(raw: str, hint: Any, key: str, source: str, limits: Mapping[str, Any] | None = None) -> Any:
    """Parse a ``--set`` value or a flag's text by the field's type: a number as Python or TOML
    writes it (``10``, ``.5``, ``1e-3``), ``true``/``false``, bare text or a quoted TOML string for
    strings (``'"x"'`` is ``x``), ``none`` for optional fields, ``a,b`` or ``[a, b]`` for arrays
    (``["a", "b"]`` as TOML), a count for ``seeds``. Integer lists take the ranges of
    :func:`~effnas.search_spaces.common.ranges.int_ranges` (``0-3``, ``0,2,4``, ``0-2,5``), bounded
    by the field's ``limits`` (its metadata: ``maximum``, ``what``, ``why``)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        if raw.lower() in ("none", "null"):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is str and not raw.startswith(("'", '"')):
        return raw  # bare text; a quoted value is a TOML string (its quotes are syntax)
    if hint in (int, float):
        try:
            return hint(raw)  # Python's syntax (.5, 1_000); TOML's (0x10, inf) below
        except ValueError:
            pass
    if typing.get_origin(hint) is tuple:
        items = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        if typing.get_args(hint)[0] is str and not any(q in items for q in "'\""):
            return tuple(s.strip() for s in items.split(",") if s.strip())
        typed = items == raw and raw.strip() and ranges.LOOKS_LIKE.fullmatch(raw)  # not a TOML array
        if typed and key.endswith("seeds") and raw.strip().isdigit():
            pass  # a seed count: 3 means 0, 1, 2
        elif typed and typing.get_args(hint)[0] is int:
            lim = dict(limits or {})
            top = lim.get("maximum", MAX_SEED if key.endswith("seeds") else MAX_INT)
            try:
                return tuple(ranges.int_ranges(raw, maximum=top, what=lim.get("what", "value"),
                                               why=lim.get("why", ""), max_count=MAX_SEEDS))
            except UserError as e:
                raise UserError(f"{key} in {source}: {e}") from e
        else:
            raw = f"[{items}]"
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as e:
        if hint is str:
            want = "a string: a TOML string in matching quotes, or bare text"
        elif typing.get_origin(hint) is tuple:
            want = f"an array of {_TYPE_NAMES[typing.get_args(hint)[0]].split()[-1]}s, e.g. 1,2"
        else:
            want = _TYPE_NAMES.get(hint, str(hint))
        raise UserError(f"{key} in {source} must be {want}, got {raw!r}") from e


def apply_override(data: dict[str, Any], cls: type, item: str, source: str) -> None:
    """Apply ``section.key=value`` (or ``section.sub.key=value``) to the plain ``data`` of ``cls``."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise UserError(f"{source} {item!r} must look like section.key=value, e.g. train.epochs=10")
    parts = key.split(".")
    node, node_cls, path = data, cls, []
    for part in parts[:-1]:
        hints = field_types(node_cls)
        path.append(part)
        sub = [k for k, h in hints.items() if is_section(h)]
        if part not in hints or not is_section(hints[part]):
            where = ".".join(path[:-1])
            raise UserError(f"unknown section {'.'.join(path)!r} in {source} {item!r}"
                             f"{suggest('.'.join(path), [f'{where}.{k}'.lstrip('.') for k in sub])}")
        node_cls = hints[part]
        node = node.setdefault(part, {})
    hints = field_types(node_cls)
    name = parts[-1]
    prefix = ".".join(parts[:-1])
    if name not in hints or is_section(hints[name]):
        known = [f"{prefix}.{k}" for k, h in hints.items() if not is_section(h)]
        raise UserError(f"unknown key {key!r} in {source}{suggest(key, known)}")
    limits = {f.name: f.metadata for f in dataclasses.fields(node_cls)}[name]
    node[name] = parse_value(raw.strip(), hints[name], key, source, limits)


def key_field(cls: type, key: str) -> tuple[Any, Mapping[str, Any]]:
    """The annotation and the metadata (``limits`` of :func:`parse_value`) of the dotted ``key`` of
    ``cls``, e.g. ``key_field(ExperimentConfig, "family.phis")``; KeyError for an unknown key."""
    *path, name = key.split(".")
    for part in path:
        cls = field_types(cls)[part]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return field_types(cls)[name], fields[name].metadata


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise UserError(f"cannot write {v!r} as TOML")


def toml_tables(name: str, d: dict[str, Any]) -> list[str]:
    """``[name]`` with its scalar keys, then its sub-tables (``None`` keys omitted)."""
    lines = ["", f"[{name}]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in d.items() if v is not None and not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += toml_tables(f"{name}.{k}", v)
    return lines


# -- checks shared by the sections ---------------------------------------------------------------

def positive(key: str, value: float | int | None, *, zero: bool = False) -> None:
    if value is None:
        return
    if value != value or value == float("inf") or value < 0 or (value == 0 and not zero):
        raise UserError(f"{key} must be a finite number {'>= 0' if zero else '> 0'}, got {value}")


def at_most(key: str, value: float | int | None, bound: float | int, why: str) -> None:
    """``value`` (when given) not above ``bound``; ``why`` says what the bound protects."""
    if value is not None and value > bound:
        raise UserError(f"{key} must be at most {bound} ({why}), got {value}")


def fraction(key: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise UserError(f"{key} must be in (0, 1], got {value}")


def choice(key: str, value: str | None, choices: tuple[str, ...]) -> None:
    """``value`` (when given) is one of ``choices``."""
    if value is not None and value not in choices:
        raise UserError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def installed(key: str, value: str, package: str, fix: str) -> None:
    """``key = value`` needs ``package``, an optional dependency: refused when it is not installed."""
    if importlib.util.find_spec(package) is None:
        raise UserError(f"{key} = {value!r} needs the {package} package, which is not installed: {fix}")


def unit(key: str, value: float | None, *, closed_low: bool = True) -> None:
    """``value`` in [0, 1) (``closed_low``) or (0, 1]."""
    if value is None:
        return
    if closed_low and not 0.0 <= value < 1.0:
        raise UserError(f"{key} must be in [0, 1), got {value}")
    if not closed_low and not 0.0 < value <= 1.0:
        raise UserError(f"{key} must be in (0, 1], got {value}")


def distinct_seeds(key: str, seeds: tuple[int, ...]) -> None:
    """At most :data:`MAX_SEEDS` distinct seeds, each a generator seed."""
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"{key} lists {len(seeds)} seeds, more than {MAX_SEEDS}: give fewer")
    if not seeds or len(set(seeds)) != len(seeds) or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise UserError(f"{key} must be distinct seeds in [0, 2**32 - 1] (a list, or a count such as 2), "
                         f"got {list(seeds)[:8]}")


def check_warmup(warmup_epochs: float | None, stage_epochs: dict[str, int | None]) -> None:
    """An explicit ``train.warmup_epochs`` fits in every stage's run length (``None``: ``train.epochs``);
    the automatic one (``None``) always does."""
    if warmup_epochs is None:
        return
    for key, epochs in stage_epochs.items():
        if epochs is not None and warmup_epochs > epochs:
            raise UserError(f"{key} = {epochs} is shorter than train.warmup_epochs = {warmup_epochs}: the warm-up "
                             f"must fit in the run; lower train.warmup_epochs or raise {key}")


def read_toml(ref: str | Path, config_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The file a config name or path ``ref`` names (a path, or a name in ``config_dir``) and its TOML
    tables; every failure (missing, unreadable, malformed, too deep, empty) is a one-line UserError."""
    path = Path(ref)
    named = ", ".join(sorted(p.stem for p in config_dir.glob("*.toml")))
    with user_file(ref, "config", f"give a TOML path or one of {named}"):
        if not path.is_file() and (config_dir / f"{ref}.toml").is_file():
            path = config_dir / f"{ref}.toml"
        if not path.is_file():
            raise UserError(f"config {str(ref)!r} {absent(path)}: give a TOML path or one of {named}")
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not TOML
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"malformed TOML in {path.name}: {e}") from e
    except RecursionError as e:
        raise UserError(f"config {path.name} is nested too deeply to parse: give a TOML config") from e
    if not data:
        raise UserError(f"config {path.name} is empty: set at least one key (e.g. [search] trials = 10), or "
                         "leave out the config to use the defaults")
    return path, data


def with_defaults(stored: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``stored`` (a config as a run directory saved it) with the keys it lacks taken from
    ``defaults``, section by section: a key added to the schema after the run was started
    counts with its default value, so the run still matches its config."""
    out = dict(stored)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, dict) and isinstance(out[k], dict):
            out[k] = with_defaults(out[k], v)
    return out


#: Config keys that may name a spec file: ``(section, key)``; a list value names one per entry.
SPEC_KEYS = (("train", "model"), ("search", "space"), ("backbones", "models"))


def anchored(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``data`` with relative spec paths that exist beside the config file made absolute: a config
    names its specs from its own folder (``specs/net.json`` beside ``study.toml``), wherever it is
    run from; a path that does not exist there stays as written (taken from the current directory)."""
    def anchor(value: Any) -> Any:
        if isinstance(value, list):
            return [anchor(v) for v in value]
        if isinstance(value, str) and value.endswith((".json", ".toml")) and not Path(value).is_absolute():
            beside = folder / value
            return str(beside.resolve()) if beside.is_file() else value
        return value

    out = dict(data)
    for section, key in SPEC_KEYS:
        if isinstance(out.get(section), dict) and key in out[section]:
            out[section] = {**out[section], key: anchor(out[section][key])}
    return out
