"""The command line's conventions, checked on every command (README, "Command-line conventions"):
--version, an examples section whose commands parse (and, the cheap ones, run), defaults shown from
the config schema, one meaning of --out / -o, --config on run, --quiet / --verbose everywhere, --set
taking the flags' ranges, readable endings with JSON behind --json, wrong study names, cut tables."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import shlex
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from PIL import Image

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands.finetune import RECIPE
from effnas.experiments.cli.main import build_parser, commands, main
from effnas.experiments.config import load_config

PARSER = build_parser()
#: Every parser with a --help: the top level, the command groups (models, data, ...) and the commands.
HELPS = [(), *sorted({path[:i] for path, _ in commands(PARSER) for i in range(1, len(path) + 1)})]
LEAVES = dict(commands(PARSER))
TINY_SEARCH = ["search", "--space", "tiny", "--trainer", "surrogate", "--target-macs", "1.5M", "--strategy", "random"]


def help_text(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*path, "--help"]) == 0
    return capsys.readouterr().out


def examples_of(text: str) -> list[list[str]]:
    """The argv (after ``effnas``) of every example line of a help text."""
    body = text.split("\nexamples:\n", 1)[1]
    lines = [line.strip() for line in body.splitlines() if line.startswith("  effnas ")]
    return [shlex.split(line)[1:] for line in lines]


def one_line_error(capsys: pytest.CaptureFixture[str], rc: int, code: int = 2) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code and len(err) == 1 and err[0].startswith("effnas: error: "), err
    return err[0]


# -- 1. --version --------------------------------------------------------------------------------

def test_version_names_effnas_torch_and_the_commit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    m = re.fullmatch(r"effnas (\S+) \(torch (\S+), commit ([0-9a-f]{12})(\+dirty)?\)", line)
    assert m, line  # the tests run in a git checkout
    assert m[1] == importlib.metadata.version("effnas") and m[2] == importlib.metadata.version("torch")


# -- 2. examples ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", HELPS, ids=lambda p: " ".join(p) or "effnas")
def test_every_help_has_examples_that_parse(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(path, capsys)
    assert "\nexamples:\n" in text, f"'effnas {' '.join(path)} --help' has no examples section"
    found = examples_of(text)
    assert found, "an examples section without an 'effnas ...' line"
    for argv in found:
        assert tuple(argv[:len(path)]) == path, f"{argv} is an example of another command"
        try:
            args = PARSER.parse_args(argv)
        except SystemExit:
            pytest.fail(f"example does not parse: effnas {shlex.join(argv)}\n{capsys.readouterr().err}")
        assert callable(args.func)


#: Examples that need no data, files or training: they run in a test as printed.
CHEAP = [("models", "list"), ("models", "show"), ("family",), ("view",), ("data", "info"), ("scale-backbone",)]


@pytest.mark.parametrize("path", CHEAP, ids=" ".join)
def test_the_cheap_examples_run(path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    ran = 0
    for argv in examples_of(help_text(path, capsys)):
        if any("/" in a for a in argv) or "--train" in argv or "--latency" in argv:
            continue  # reads files or trains
        assert main(argv) == 0, f"effnas {shlex.join(argv)}: {capsys.readouterr().err}"
        ran += 1
    assert ran, f"no example of {path} ran"


# -- 3. defaults and types from the schema --------------------------------------------------------

def _options() -> list[tuple[tuple[str, ...], argparse.Action]]:
    return [(path, a) for path, p in LEAVES.items() for a in p._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("path,action", _options(), ids=lambda x: " ".join(x) if isinstance(x, tuple) else
                         x.option_strings[-1])
def test_every_option_states_its_default(path: tuple[str, ...], action: argparse.Action) -> None:
    """A config flag shows its key's default from the schema (finetune: the recipe's) once; any other
    option with a default names it (or %(default)s)."""
    help_ = action.help or ""
    assert len(re.findall(r"(?<!%)\(default", help_)) <= 1, f"{action.option_strings}: the default is stated twice"
    if action.dest.startswith(c.KEY_PREFIXES):
        value = c._value_at(RECIPE if path == ("finetune",) else c.DEFAULTS, action.dest)
        shown = c.shown_default(action.dest, value)
        if action.required or action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction):
            return  # a required flag, or a switch: its help says what it turns on
        if shown is not None:
            assert f"(default: {shown})" in help_, f"{action.option_strings} does not show {action.dest}'s {shown}"
        else:
            assert "default" in help_, f"{action.option_strings}: {action.dest} defaults to {value!r}: say what then"
    elif action.default not in (None, False, [], argparse.SUPPRESS):
        assert "%(default)" in help_ or str(action.default) in help_, \
            f"{' '.join(path)} {action.option_strings} does not state its default {action.default!r}"


def test_metavars_are_types_not_config_keys(capsys: pytest.CaptureFixture[str]) -> None:
    for path in LEAVES:
        usage = help_text(path, capsys).split("\n\n")[0]
        assert not re.search(r"\b(DATA|TRAIN|SEARCH|GRID|FAMILY|BACKBONES|SUPERNET|RUN)\.", usage), usage
    usage = help_text(("train",), capsys)
    assert "--epochs N" in usage and "--lr X" in usage and "--model MODEL" in usage
    assert "--seeds N|LIST" in help_text(("family",), capsys)


def test_a_flag_parses_its_text_as_set_does(capsys: pytest.CaptureFixture[str]) -> None:
    args = PARSER.parse_args(["train", "--lr", ".5", "--epochs", "1_000"])
    assert (getattr(args, "train.lr"), getattr(args, "train.epochs")) == (0.5, 1000)
    assert load_config(None, overrides=["train.lr=.5", "train.epochs=1_000"]).train.lr == 0.5
    rc = main(["train", "--epochs", "ten"])
    assert "train.epochs in --epochs must be an integer, got 'ten'" in one_line_error(capsys, rc)


# -- 4. one meaning of --out and -o ------------------------------------------------------------

def test_out_is_a_directory_and_o_a_file_in_every_command() -> None:
    for path, p in LEAVES.items():
        for a in p._actions:
            if "--out" in a.option_strings and a.dest != "output":
                assert a.metavar == "DIR", f"{' '.join(path)} --out {a.metavar}: --out names a directory"
            if "-o" in a.option_strings:
                assert a.option_strings == ["-o", "--output"] and a.metavar != "DIR", (path, a.option_strings)


def test_the_old_out_file_spelling_still_works_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "v.html"
    assert main(["view", "tiny", "--official", "--phis", "0-1", "--out", str(page)]) == 0
    captured = capsys.readouterr()
    assert page.is_file() and f"wrote {page}" in captured.out
    assert "--out FILE is deprecated here: write -o/--output FILE" in captured.err


# -- 5. run --config ---------------------------------------------------------------------------

def test_run_takes_its_config_as_a_flag_or_positional(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "demo", "--plan", "--json", "--set", "family.phis=0-1"]) == 0
    positional = capsys.readouterr().out
    assert main(["run", "--config", "demo", "--plan", "--json", "--set", "family.phis=0-1"]) == 0
    assert capsys.readouterr().out == positional and '"phi": 1' in positional
    assert "two configs given ('demo' and --config 'paper')" in one_line_error(
        capsys, main(["run", "demo", "--config", "paper", "--plan"]))
    assert "give a config: effnas run CONFIG or effnas run --config CONFIG" in one_line_error(
        capsys, main(["run", "--plan"]))


# -- 6. --quiet and --verbose --------------------------------------------------------------------

@pytest.mark.parametrize("path", list(LEAVES), ids=" ".join)
def test_quiet_and_verbose_reach_every_command(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    argv = examples_of(help_text(path, capsys))[0]
    for flag, want in (("--quiet", (True, False)), ("-v", (False, True)), ("--verbose", (False, True))):
        args = PARSER.parse_args([*argv, flag])
        assert (args.quiet, args.verbose) == want
    with pytest.raises(SystemExit):
        PARSER.parse_args([*argv, "-q", "-v"])


def test_verbose_shows_the_config_and_an_errors_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["family", "--base", "tiny", "--official", "--phis", "0-2", "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "effnas: config: train.model=tiny, family.phis=0-2, family.official=on" in err
    assert main(["models", "show", "nope", "-v"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("effnas: error: unknown model 'nope'") and "Traceback (most recent call last)" in err


def test_quiet_search_prints_only_its_result_and_json_is_behind_a_flag(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A storage outside --out is a note; the per-trial lines are progress: --quiet drops both. The
    last lines are a readable summary; --json prints the same summary as JSON."""
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    argv = [*TINY_SEARCH, "--trials", "1", "--set", f"search.storage={storage}", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    loud = capsys.readouterr()
    assert "effnas: note: search.storage writes to" in loud.err and "trial" in loud.err
    assert loud.out.startswith("search 'search' (random): 1 trial, 1 completed")
    assert re.search(r"^best: trial \d, reward 0\.\d{4}, accuracy 0\.\d{4}, \d+\.\d\dM MACs$", loud.out, re.M)
    assert f"best_spec.json in {tmp_path / 's'}; the study is in {storage}" in loud.out
    assert main([*argv, "--trials", "2", "--resume", "--quiet", "--json"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    summary = json.loads(quiet.out)
    assert summary["trials"] == 2 and summary["storage"] == storage


# -- 7. --set takes the flags' ranges and lists --------------------------------------------------

@pytest.mark.parametrize("flag,key,text,want", [
    ("--phis", "family.phis", "0-2", (0, 1, 2)),
    ("--phis", "family.phis", "3,0-1", (0, 1, 3)),
    ("--seeds", "family.seeds", "0-2", (0, 1, 2)),
    ("--seeds", "family.seeds", "3", (0, 1, 2)),
    ("--seeds", "family.seeds", "0,5", (0, 5)),
    ("--baseline-phis", "family.baseline_phis", "1-2", (1, 2)),
])
def test_set_takes_what_the_flag_takes(flag: str, key: str, text: str, want: tuple[int, ...]) -> None:
    by_flag = c.experiment(PARSER.parse_args(["family", flag, text]))
    by_set = c.experiment(PARSER.parse_args(["family", "--set", f"{key}={text}"]))
    assert by_flag == by_set and c._value_at(by_set, key) == want


def test_set_and_flag_give_the_same_table_and_the_same_errors(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["family", "--base", "tiny", "--official", "--json"]
    assert main([*base, "--phis", "0-2"]) == 0
    by_flag = capsys.readouterr().out
    assert main([*base, "--set", "family.phis=0-2"]) == 0
    assert capsys.readouterr().out == by_flag and {r["phi"] for r in json.loads(by_flag)} == {0, 1, 2}
    for text, needle in (("3-1", "empty phi range '3-1'"), ("0-25", "phi 25 in '0-25' is above 20"),
                         ("0-2,1", "phi 1 is given twice in '0-2,1'")):
        assert needle in one_line_error(capsys, main([*base, "--phis", text]))
        assert needle in one_line_error(capsys, main([*base, "--set", f"family.phis={text}"]))


# -- 9. a wrong --study lists the studies --------------------------------------------------------

def test_a_wrong_study_lists_the_studies_in_the_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s").mkdir()
    storage = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    for name in ("beta", "alpha"):
        optuna.create_study(study_name=name, storage=storage)
    line = one_line_error(capsys, main(["export", "--storage", storage, "--study", "gamma", "--trial", "0", "-o",
                                        str(tmp_path / "t.json")]))
    assert f"no study 'gamma' in {storage} (it holds 'alpha', 'beta'): give one of them as --study" in line
    line = one_line_error(capsys, main([*TINY_SEARCH, "--trials", "1", "--study", "gamma", "--resume", "--quiet",
                                        "--out", str(tmp_path / "s")]))
    assert "--resume: no study 'gamma'" in line and "(it holds 'alpha', 'beta')" in line


# -- 10. tables cut for the console --------------------------------------------------------------

def test_a_cut_table_says_how_many_rows_are_left_and_where() -> None:
    table = pd.DataFrame({"alpha": np.arange(20), "acc": np.linspace(0, 1, 20)})
    text = c.console_table(table, "runs/g/grid.csv")
    lines = text.splitlines()
    assert len(lines) == 1 + c.CONSOLE_ROWS + 1
    assert lines[-1] == "... 5 more rows in runs/g/grid.csv (--verbose prints them all)"
    assert len(c.console_table(table, "x", verbose=True).splitlines()) == 21
    assert "more rows" not in c.console_table(table.head(15), "x")


def test_data_info_cuts_its_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for k in ("a", "b"):
            (tmp_path / "f" / split / k).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "f" / split / k / "ok.png")
    for i in range(23):
        (tmp_path / "f" / "train" / "a" / f"bad{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["data", "info", f"imagefolder:{tmp_path / 'f'}"]) == 0
    out = capsys.readouterr().out
    assert "bad files: 23" in out and out.count(".png") == 20
    assert "... and 3 more (--verbose or --json lists them all)" in out
    assert main(["data", "info", f"imagefolder:{tmp_path / 'f'}", "--verbose"]) == 0
    assert capsys.readouterr().out.count(".png") == 23
