"""bench/results/cifar10_scaling.py (docs/results/cifar10/report.md) on real inputs, before the study's own
data are committed.

Two inputs, each in a fresh docs/results-like folder with the committed short-budget study beside it:

* ``stand_in`` (fast): the short-budget study's longer/family.csv (real CIFAR-10 runs, two seeds, no rules,
  no TTA column) as the new study's family.csv;
* ``tiny`` (slow, trained once per module): a real ``effnas family`` run of the study's command at toy size
  (the found base, the paper's coefficients, phi 0-1, the rules fast:0.8 and resnet-rs, the fast recipe,
  digits, 1 epoch, 2 seeds), whose family.csv has every column the study's will have.

Every number checked is recomputed here from the CSV with pandas and scipy, not with the page's code; the
verdict words are checked against ``compare_methods`` / ``compare_rules``; and each input is also rendered
with seed 0 only, as the study's first part arrives (n = 1: no interval, no verdict).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student
from scipy.stats import ttest_ind, ttest_rel

from effnas.experiments.cli.main import main as effnas
from effnas.scaling.analysis.compare import compare_methods
from effnas.scaling.analysis.rules import compare_rules
from effnas.search_spaces.common.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "docs" / "results" / "cifar10" / "short-budget"
sys.path.insert(0, str(ROOT / "bench" / "results"))

import cifar10_scaling as gen  # noqa: E402

#: The short-budget files its loader reads (tests/bench/test_cifar10_page.py's list).
OLD_FILES = ["trials.csv", "grid.csv", "family.csv", "backbones.csv", "efficiency.csv", "fits.json", "bands.csv",
             "fig4.csv", "run_report.html", "longer/family.csv", "longer/fits.json", "longer/bands.csv"]
SINGLE = ("depth", "width", "resolution")
GOAL_BASE, GOAL_TOP = 0.75, 0.85


def results_folder(root: Path, family: pd.DataFrame, study: dict) -> Path:
    for name in OLD_FILES:
        (root / "cifar10" / "short-budget" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(OLD / name, root / "cifar10" / "short-budget" / name)
    family.to_csv(root / "cifar10" / "family.csv", index=False)
    (root / "cifar10" / "study.json").write_text(json.dumps(study))
    return root


def study_json(df: pd.DataFrame, **extra: object) -> dict:
    seeds = sorted(int(s) for s in df["seed"].unique())
    return {"epochs": int(df["epochs_completed"].max()), "recipe": "fast", "data_fraction": 1.0, "val_fraction": 0.05,
            "workers": 2, "threads_per_worker": 1, "torch": "2.13.0+cpu", "machine": "x86_64, 2 CPUs, Linux",
            "command": "effnas family ...", "parts": [{"seeds": seeds, "wall_seconds": 60.0,
                                                       "finished_utc": "2026-12-08T00:00:00Z"}], **extra}


def seed0(root: Path, src: Path) -> Path:
    """The same study as its first part arrives: seed 0 only."""
    df = pd.read_csv(src / "cifar10" / "family.csv")
    df = df[df["seed"] == 0]
    study = json.loads((src / "cifar10" / "study.json").read_text())
    study["parts"] = [{**study["parts"][0], "seeds": [0]}]
    study.pop("seeds", None)
    return results_folder(root, df, study)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("family")
    rc = effnas(["family", "--base", str(ROOT / "experiments/config/presets/specs/cifar10_found_base.json"),
                 "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-1", "--rules", "fast:0.8,resnet-rs",
                 "--train", "--dataset", "digits", "--epochs", "1", "--seeds", "2", "--set", "train.recipe=fast",
                 "--set", "train.threads=1", "--out", str(out), "--yes", "-q"])
    assert rc == 0
    return out / "family.csv"


@pytest.fixture
def tiny(tiny_run: Path, tmp_path: Path) -> Path:
    df = pd.read_csv(tiny_run)
    study = study_json(df, seeds=[0, 1], phis=[0, 1], rules=["fast:0.8", "resnet-rs"], coefficients=[1.2, 1.1, 1.15])
    return results_folder(tmp_path, df, study)


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    df = pd.read_csv(OLD / "longer" / "family.csv")
    return results_folder(tmp_path, df, study_json(df))


INPUTS = ["stand_in", pytest.param("tiny", marks=pytest.mark.slow)]


# -- recomputation (pandas / scipy only) ------------------------------------------------------------------------


def runs(results: Path) -> pd.DataFrame:
    df = pd.read_csv(results / "cifar10" / "family.csv")
    return df[df["status"] == "completed"]


def distinct(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["same_network_as"].isna()] if "same_network_as" in df.columns else df


def ci(values: pd.Series) -> str:
    """Mean [95 % t-interval] in %, the mean alone for one value."""
    v = values.to_numpy(float)
    if len(v) < 2:
        return f"{100 * v.mean():.1f}"
    half = student.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return f"{100 * v.mean():.1f} [{100 * (v.mean() - half):.1f}, {100 * (v.mean() + half):.1f}]"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p {p:.3f}"


def paired(a: pd.DataFrame, b: pd.DataFrame, col: str = "test_accuracy") -> tuple[np.ndarray, str]:
    """a - b by seed and the page's cell for it: difference [95 % interval] in points (difference alone, n = 1)."""
    x, y = a.set_index("seed")[col], b.set_index("seed")[col]
    seeds = sorted(set(x.index) & set(y.index))
    d = (x[seeds] - y[seeds]).to_numpy(float)
    if len(d) < 2:
        return d, f"{100 * (x.mean() - y.mean()):+.1f}"
    half = student.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d, f"{100 * d.mean():+.1f} [{100 * (d.mean() - half):+.1f}, {100 * (d.mean() + half):+.1f}]"


def verdict(d: np.ndarray, gap: float) -> str:
    if abs(gap) > 0.1:
        return "not comparable"
    if len(d) < 2:
        return "too few seeds"
    p = ttest_rel(d, np.zeros_like(d)).pvalue
    return "tied within noise" if p >= 0.05 else ("better" if d.mean() > 0 else "worse")


def line(text: str, start: str) -> str:
    found = [x for x in text.splitlines() if x.startswith(start)]
    assert len(found) == 1, f"{len(found)} lines start with {start!r}"
    return found[0]


def render(results: Path) -> str:
    return gen.render(results)["cifar10/report.md"]


# -- the page ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INPUTS)
def test_every_members_row_is_the_csv_over_seeds(name: str, request: pytest.FixtureRequest) -> None:
    results = request.getfixturevalue(name)
    df, text = runs(results), render(results)
    d = distinct(df)
    checked = 0
    for (m, phi), g in d.groupby(["method", "phi"]):
        r = g.iloc[0]
        row = (f"| {m} | {phi} | {r['macs'] / 1e6:.2f} M | {int(r['params']):,} | "
               + (f"{r['activations'] / 1e3:.1f} K | " if "activations" in g else "")
               + f"{int(r['resolution'])} | {len(g)} | {ci(g['test_accuracy'])} | "
               + (f"{ci(g['test_accuracy_tta'])} | " if "test_accuracy_tta" in g else "")
               + f"{g['train_seconds'].mean() / 60:.1f} |")
        assert row in text.splitlines(), row
        checked += 1
    assert checked == len(d.groupby(["method", "phi"])) >= 5
    # a rule's phi 0 is the base's runs: listed once, and said so
    shared = df[~df.index.isin(d.index)]
    assert all(f"{m} phi {p}" in text for m, p in zip(shared["method"], shared["phi"], strict=True))


@pytest.mark.parametrize("name", INPUTS)
def test_compound_against_each_dimension_recomputes_and_is_compare_methods(name: str,
                                                                           request: pytest.FixtureRequest) -> None:
    results = request.getfixturevalue(name)
    df, text = runs(results), render(results)
    ours = compare_methods(df)
    checked = 0
    for phi in sorted(p for p in df["phi"].unique() if p > 0):
        a = df[(df["method"] == "compound") & (df["phi"] == phi)]
        for b in SINGLE:
            other = df[(df["method"] == b) & (df["phi"] == phi)]
            if other.empty:
                continue
            gap = other["macs"].median() / a["macs"].median() - 1
            d, cell = paired(a, other)
            row = line(text, f"| {phi} | compound - {b} | {100 * gap:+.1f} % | {cell} | ")
            word = verdict(d, gap)
            assert row.split(" | ")[7] == word
            assert word == ours[(ours["phi"] == phi) & (ours["b"] == b)]["verdict"].iloc[0]
            assert p_text(ttest_rel(a.sort_values("seed")["test_accuracy"],
                                    other.sort_values("seed")["test_accuracy"]).pvalue) in row
            # the findings say the same word
            assert f"phi {phi} {word} ({100 * d.mean():+.1f} pts" in line(text, f"- **Compound against {b}-only**")
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("name", INPUTS)
def test_findings_state_the_goals_from_the_csv(name: str, request: pytest.FixtureRequest) -> None:
    results = request.getfixturevalue(name)
    df, text = runs(results), render(results)
    c = df[df["method"] == "compound"]
    b = c[c["phi"] == 0].iloc[0]  # the shipped spec of the search's winner, by its counts
    assert (f"The base the short-budget study's search found (experiments/config/presets/specs/cifar10_found_base.json"
            f": {b['params']:,} parameters, {b['macs']:,} MACs at {b['resolution']} px)") in text
    first = c[c["phi"] == 1].iloc[0]
    assert f"alpha, beta, gamma = {first['depth']:.3g}, {first['width']:.3g}, {first['resolution_mult']:.3g}" in text
    for label, phi, goal in (("Base", 0, GOAL_BASE), ("Largest member", c["phi"].max(), GOAL_TOP)):
        acc = c[c["phi"] == phi]["test_accuracy"]
        found = line(text, f"- **{label}** (compound phi {phi},")
        mean, _, rest = ci(acc).partition(" ")
        assert f"{mean} %{' ' + rest if rest else ''} (n = {len(acc)}); the goal of {100 * goal:g} % is" in found
        assert ("is reached" in found) == (acc.mean() >= goal)
        if acc.mean() < goal:
            assert f"not reached: {100 * (goal - acc.mean()):.1f} points short" in found


@pytest.mark.slow
def test_tta_gain_and_rules_recompute(tiny: Path) -> None:
    df, text = runs(tiny), render(tiny)
    d = distinct(df)
    gain = (d["test_accuracy_tta"] - d["test_accuracy"]).to_numpy(float)
    half = student.ppf(0.975, len(gain) - 1) * gain.std(ddof=1) / math.sqrt(len(gain))
    tta = line(text, "- **Test-time augmentation**")
    assert (f"over the {len(gain)} distinct runs, paired by run: {100 * gain.mean():+.1f} "
            f"[{100 * (gain.mean() - half):+.1f}, {100 * (gain.mean() + half):+.1f}] pts, "
            f"{p_text(ttest_rel(d['test_accuracy_tta'], d['test_accuracy']).pvalue)}") in tta
    ours = compare_rules(df)
    for rule in ("fast:0.8", "resnet-rs"):
        a = df[(df["method"] == "compound") & (df["phi"] == 1)]
        b = df[(df["method"] == rule) & (df["phi"] == 1)]
        for cost, label in (("macs", "MACs"), ("activations", "activations"), ("train_seconds", "training time")):
            gap = b[cost].mean() / a[cost].mean() - 1
            diffs, cell = paired(a, b)
            row = line(text, f"| {label} | 1 | compound - {rule} | ")
            assert f"({100 * gap:+.1f} %) | {cell} | " in row
            word = verdict(diffs, gap)
            assert row.endswith(f"| {word} |")
            assert word == ours[(ours["cost"] == cost) & (ours["b"] == rule)]["verdict"].iloc[0]


@pytest.mark.parametrize("name", INPUTS)
def test_old_and_new_point_by_point(name: str, request: pytest.FixtureRequest) -> None:
    results = request.getfixturevalue(name)
    df, text = runs(results), render(results)
    old = pd.read_csv(OLD / "family.csv")
    old = old[old["family"] == "found"]
    new0, old0 = (x[(x["method"] == "compound") & (x["phi"] == 0)]["test_accuracy"] for x in (df, old))
    row = line(text, f"| compound | 0 | {old['macs'].iloc[0] / 1e6:.2f} M / ")
    change = 100 * (new0.mean() - old0.mean())
    assert f"| {ci(new0)} (n = {len(new0)}) | {ci(old0)} (n = {len(old0)}) | {change:+.1f} [" in row
    assert p_text(ttest_ind(new0, old0, equal_var=False).pvalue) in row
    # each old verdict beside the new one: compare_methods on the old table, 'changed' where the words differ
    old_v, new_v = compare_methods(old), compare_methods(df)
    for r in new_v[new_v["b"].isin(SINGLE)].itertuples():
        o = old_v[(old_v["phi"] == r.phi) & (old_v["b"] == r.b)].iloc[0]
        row = line(text, f"| {r.phi} | compound - {r.b} | {100 * o['diff']:+.1f}: {o['verdict']} | ")
        assert f"| {100 * r.diff:+.1f}: {r.verdict} | " in row
        decided = {"better", "worse", "tied within noise"}
        if r.verdict in decided and o["verdict"] in decided:
            assert ("changed from 4 epochs" if r.verdict != o["verdict"] else "same as 4 epochs") in row
    # the setup differences come from the files: the old run report's share of the pool, study.json's
    assert "| training images per run | 8,550 (18 % of the 47,500 left after 2,500 for validation) |" in text
    assert f"| epochs | 4 | 12 | {int(df['epochs_completed'].max())} |" in text


@pytest.mark.parametrize("name", INPUTS)
def test_one_seed_gives_no_interval_and_no_verdict(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    text = render(seed0(tmp_path / "one", request.getfixturevalue(name)))
    assert "(1 per network; one seed gives no interval and no verdict)" in text
    assert "test accuracy" in line(text, "- **Base**") and "(n = 1)" in line(text, "- **Base**")
    assert "no interval" in line(text, "- **Base**")
    header, *members = [x.split(" | ") for x in text.split("## Members")[1].split("## Compound")[0].splitlines()
                        if x.startswith("| ")]
    n = header.index("n")
    assert members and all(r[n] == "1" and "[" not in r[n + 1] for r in members)
    dims = text.split("## Compound against one dimension")[1].split("Each method's largest")[0]
    words = [x.split(" | ")[7] for x in dims.splitlines() if x.startswith("| ") and "compound - " in x]
    assert words and set(words) <= {"too few seeds", "not comparable"}
    rules = text.split("## Other scaling rules")[1].split("## Old and new")[0] if "## Other scaling" in text else ""
    assert not any(w in rules for w in ("| better |", "| worse |", "| tied within noise |"))
    assert "changed from" not in text and "same as 4 epochs" not in text


def test_check_flags_a_hand_edit(stand_in: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data", str(stand_in)]
    assert gen.main(gen.SCRIPT, gen.PAGES, gen.render, argv) == 0
    assert gen.main(gen.SCRIPT, gen.PAGES, gen.render, [*argv, "--check"]) == 0
    page = stand_in / "cifar10" / "report.md"
    page.write_text(page.read_text().replace("tied within noise", "better", 1))
    assert gen.main(gen.SCRIPT, gen.PAGES, gen.render, [*argv, "--check"]) == 1
    assert "stale: cifar10/report.md" in capsys.readouterr().out


def test_study_json_that_disagrees_with_family_csv_is_refused(stand_in: Path) -> None:
    path = stand_in / "cifar10" / "study.json"
    good = json.loads(path.read_text())
    for change, message in ((dict(parts=[{**good["parts"][0], "seeds": [0, 1, 2]}]), "the parts trained seeds"),
                            (dict(epochs=24), "trained 12"), (dict(coefficients=[1.2, 1.1, 1.15]), "built with 1.1"),
                            (dict(rules=["fast:0.8"]), "rules"), (dict(parts=[]), "'parts'")):
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(UserError, match=message):
            render(stand_in)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "torch"}))
    with pytest.raises(UserError, match="missing key.*torch"):
        render(stand_in)


def test_the_figure_has_a_panel_per_cost(stand_in: Path) -> None:
    out = gen.plot(stand_in)
    assert out == stand_in / "cifar10" / "accuracy_vs_cost.png"
    width = matplotlib.image.imread(out).shape[1]  # 6 inches at 110 dpi per panel: MACs and training time
    assert width == 2 * 6 * 110


# -- the CIFAR-10 part of docs/results/scaling_rules.md (bench/results/scaling_rules.py) ----------------------------


def rules_page(results: Path) -> str:
    import scaling_rules

    shutil.copytree(ROOT / "docs" / "results" / "scaling_rules", results / "scaling_rules", dirs_exist_ok=True)
    return scaling_rules.render(results)["scaling_rules.md"]


def test_the_rules_page_waits_for_a_study_with_rules(stand_in: Path) -> None:
    text = rules_page(stand_in)  # compound and the single dimensions only
    assert "(not yet) on CIFAR-10" in text and "## CIFAR-10" not in text and "## The demo" in text


@pytest.mark.slow
@pytest.mark.parametrize("only_seed0", [False, True])
def test_the_rules_page_has_a_cifar10_part_from_the_study(tiny: Path, only_seed0: bool, tmp_path: Path) -> None:
    results = seed0(tmp_path, tiny) if only_seed0 else tiny
    text = rules_page(results)
    part = text.split("## CIFAR-10")[1].split("## How these numbers were made")[0]
    df = runs(results)
    cmp = compare_rules(df, metric="test_accuracy", reference="compound")
    cmp = cmp[~cmp["b"].isin(SINGLE)]
    assert set(cmp["b"]) == {"fast:0.8", "resnet-rs"}
    verdicts = part.split("### Each rule against compound")[1].split("Verdicts per rule and cost")[0]
    rows = [x for x in verdicts.splitlines() if x.startswith(("| MACs |", "| activations |", "| training seconds |"))]
    assert [x.split(" | ")[-1].rstrip(" |") for x in rows] == list(cmp["verdict"])
    if only_seed0:
        assert "One seed gives no interval and no verdict" in part
        assert set(cmp["verdict"]) <= {"too few seeds", "not comparable"}
    for rule, phi in (("fast:0.8", 1), ("resnet-rs", 1)):
        acc = df[(df["method"] == rule) & (df["phi"] == phi)]["test_accuracy"]
        assert f"| {rule} | {phi} |" in part and f"{100 * acc.mean():.1f}" in part
