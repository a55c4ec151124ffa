"""The MBConv ground-truth table: its space, the build plan, the reader (format, curves, errors), and (slow) a
real build on digits replayed by bench-search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import load_config
from effnas.experiments.pipeline.bench_table import bench_plan
from effnas.nas.benchmarks import get_benchmark
from effnas.nas.benchmarks.mbconv import PARAMETERS, SIZE, SPACE, MBConvTable, arch_key, architectures, space_choices
from effnas.nas.space import SPACES
from effnas.search_spaces.common.errors import UserError


def test_the_space_is_the_tables_and_small_enough_to_train_whole() -> None:
    space = SPACES[SPACE]
    assert space_choices(space) == PARAMETERS and space.size == SIZE == 216
    archs = architectures(space)
    assert len(archs) == 216 and len({arch_key(a, list(PARAMETERS)) for a in archs}) == 216


def test_the_build_plan_trains_every_network_seed_major() -> None:
    cfg = load_config("demo", overrides=["family.seeds=2", "data.dataset=digits"])
    bp = bench_plan(cfg, SPACE)
    assert len(bp.jobs) == 432 and len(bp.table) == 216
    assert [j.seed for j in bp.jobs[:216]] == [0] * 216 and {j.seed for j in bp.jobs[216:]} == {1}
    assert bp.jobs[0].key == "archs/3-3-3-3-3-3-seed0" and bp.jobs[0].spec.stages[0].kernel == 3
    assert bp.jobs[215].spec.stages[2].kernel == 7 and bp.jobs[215].spec.stages[2].expansion == 6
    assert bp.timing is not None  # every network's latency is measured after training


def fake_table(tmp_path: Path, seeds: int = 2, drop: int = 0) -> Path:
    """A table in the format bench-build writes, with accuracy additive in the choices (known structure)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for a in architectures(SPACES[SPACE])[drop:]:
        acc = 0.5 + 0.02 * sum(int(v) for v in a.values()) / 10
        for s in range(seeds):
            final = acc + rng.normal(scale=0.005)
            rows.append({**a, "seed": s, "val_accuracy": final, "test_accuracy": final - 0.01,
                         "curve": f"{final - 0.2:.4f};{final - 0.05:.4f};{final:.4f}", "train_seconds": 30.0 + s,
                         "params": 50000, "macs": 1e6,
                         "latency_ms": 1.0 + sum(int(v) for v in a.values()) / 20})
    pd.DataFrame(rows).to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "protocol.json").write_text(json.dumps({"epochs": 3, "num_classes": 10}))
    return tmp_path


def test_the_reader_gives_records_and_the_curve_of_the_observed_seed(tmp_path: Path) -> None:
    table = MBConvTable(str(fake_table(tmp_path)))
    assert table.full_epochs == 3 and table.records_curves and len(list(table.keys())) == 216
    a = next(table.keys())
    rec = table.record(a)
    assert len(rec.accuracies) == 2 and rec.train_seconds == 30.5 and rec.params_m == 0.05
    for seed in range(5):
        seen = table.observe(a, seed=seed)
        assert table.curve(a, seed=seed)[-1] == pytest.approx(seen, abs=1e-4)  # the same run's curve
    as_text = {k: str(v) for k, v in a.items()}  # a table's text values are the choices
    assert table.record(as_text) == rec
    assert get_benchmark(f"mbconv:{tmp_path}").record(a) == rec


def test_a_curve_is_the_observed_runs_even_when_two_seeds_tie(tmp_path: Path) -> None:
    fake_table(tmp_path)
    df = pd.read_csv(tmp_path / "table.csv")
    df.loc[df["seed"] == 1, "val_accuracy"] = df.loc[df["seed"] == 0, "val_accuracy"].to_numpy()  # ties
    df.loc[df["seed"] == 1, "curve"] = "0.1000;0.2000;0.3000"
    df.to_csv(tmp_path / "table.csv", index=False)
    table = MBConvTable(str(tmp_path))
    a = next(table.keys())
    picks = {table.observe_index(a, seed=s): table.curve(a, seed=s)[0] for s in range(20)}
    assert picks[1] == 0.1 and picks[0] != 0.1  # seed 1's own curve, not seed 0's of equal final accuracy


def test_a_table_with_unequal_seeds_or_bad_choices_is_refused(tmp_path: Path) -> None:
    fake_table(tmp_path)
    df = pd.read_csv(tmp_path / "table.csv")
    df.iloc[1:].to_csv(tmp_path / "table.csv", index=False)  # one architecture lost a seed
    with pytest.raises(UserError, match="different seeds.*--resume"):
        list(MBConvTable(str(tmp_path)).keys())
    fake_table(tmp_path)
    with pytest.raises(UserError, match="unknown b0_kernel 9: expected one of 3, 5, 7"):
        MBConvTable(str(tmp_path)).record({**next(MBConvTable(str(tmp_path)).keys()), "b0_kernel": 9})


def test_an_unfinished_or_missing_table_is_a_one_line_error(tmp_path: Path) -> None:
    table = MBConvTable(str(fake_table(tmp_path, drop=10)))
    first = architectures(SPACES[SPACE])[0]
    with pytest.raises(UserError, match="holds 206 of 216 architectures.*--resume"):
        table.record(first)
    with pytest.raises(UserError, match="no MBConv table at"):
        MBConvTable(str(tmp_path / "none"))
    (tmp_path / "table.csv").write_text("seed,val_accuracy\n0,0.5\n")
    with pytest.raises(UserError, match="lacks the column"):
        MBConvTable(str(tmp_path)).record(first)


def test_bench_search_replays_every_strategy_on_a_table(tmp_path: Path) -> None:
    fake_table(tmp_path / "t")
    out = tmp_path / "bs"
    assert main(["bench-search", "--benchmark", f"mbconv:{tmp_path / 't'}", "--runs", "3", "--strategies",
                 "random,evolution,asha,hyperband", "--eta", "3", "--quiet", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["strategy"]) == {"random", "evolution", "asha", "hyperband"} and len(runs) == 12
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["charge_epochs"] == 3 and protocol["budget_seconds"] == pytest.approx(25 * 30.5)


@pytest.mark.slow  # 216 networks trained for an epoch on digits: about a minute
def test_a_real_build_on_digits_is_read_back(tmp_path: Path) -> None:
    out = tmp_path / "table"
    assert main(["bench-build", "--dataset", "digits", "--epochs", "2", "--seeds", "1", "--set",
                 "data.data_fraction=0.1", "--set", "train.threads=1", "--yes", "--quiet", "--out", str(out)]) == 0
    df = pd.read_csv(out / "table.csv")
    assert len(df) == 216 and df["curve"].str.count(";").eq(1).all() and (df["latency_ms"] > 0).all()
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["epochs"] == 2 and protocol["rows"] == 216 and protocol["dataset"] == "digits"
    table = MBConvTable(str(out))
    a = next(table.keys())
    row = df[(df[list(PARAMETERS)] == pd.Series(a)).all(axis=1)].iloc[0]
    assert table.record(a).accuracies == (row["val_accuracy"],)
    assert main(["bench-build", "--dataset", "digits", "--epochs", "2", "--seeds", "1", "--set",
                 "data.data_fraction=0.1", "--set", "train.threads=1", "--yes", "--quiet", "--resume", "--out",
                 str(out)]) == 0  # nothing left to train: the table is rewritten from the finished runs
    assert pd.read_csv(out / "table.csv").equals(df)
