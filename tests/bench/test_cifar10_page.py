"""docs/results/cifar10/short-budget/report.md (the short-budget study) is generated from the files
beside it and cannot drift from them.

The page is rebuilt from the committed files alone (bench/results/cifar10_page.py) into a temporary
folder and compared with the committed page; key numbers are recomputed here from the CSVs with
plain pandas, independently of the page's code; a changed data file changes the page.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "results" / "cifar10" / "short-budget"
sys.path.insert(0, str(ROOT / "bench" / "results"))

import cifar10_page  # noqa: E402

from effnas.scaling.analysis.compare import compare_methods, paper_table  # noqa: E402

DATA = ["trials.csv", "grid.csv", "family.csv", "backbones.csv", "efficiency.csv", "fits.json", "bands.csv",
        "fig4.csv", "run_report.html", "longer/family.csv", "longer/fits.json", "longer/bands.csv"]


def _copy(tmp: Path) -> Path:
    """The committed data files only (no report.md, no tables.md) in a fresh folder."""
    for name in DATA:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FOLDER / name, tmp / name)
    return tmp


@pytest.fixture(scope="module")
def page() -> str:
    return (FOLDER / "report.md").read_text()


def test_the_committed_page_is_what_its_data_give(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    assert cifar10_page.main(["--dir", str(d)]) == 0
    for name in ("report.md", "tables.md"):
        assert (d / name).read_text() == (FOLDER / name).read_text(), (
            f"docs/results/cifar10/short-budget/{name} differs from what its data files give: run "
            f"'python bench/results/cifar10_page.py' and commit the result")


def test_key_numbers_equal_the_csvs(page: str) -> None:
    trials = pd.read_csv(FOLDER / "trials.csv")
    done = trials[trials["status"] == "completed"]["accuracy"]
    assert f"proxy accuracy spans {done.min():.3f} to {done.max():.3f}" in page  # not the 0.29-0.34 once typed

    grid = pd.read_csv(FOLDER / "grid.csv").sort_values(["val_accuracy", "macs"], ascending=[False, True])
    top6 = grid.head(6)
    mixed = int(((top6[["alpha", "beta", "gamma"]] > 1).sum(axis=1) == 3).sum())
    assert mixed < 6 and f"Of the six best points, {mixed} scale all three dimensions" in page

    f4 = pd.read_csv(FOLDER / "fig4.csv").pivot_table(index=["depth", "resolution"], columns="width",
                                                       values="test_accuracy")
    lift = f4.loc[(1.0, 42)] - f4.loc[(1.0, 32)]
    deeper = pd.concat([f4.loc[(2.0, r)] - f4.loc[(1.0, r)] for r in (32, 42)])
    assert f"changes accuracy by {100 * lift.min():+.1f} to {100 * lift.max():+.1f} points" in page
    assert f"doubling depth by {100 * deeper.min():+.1f} to {100 * deeper.max():+.1f} points" in page

    fam = pd.read_csv(FOLDER / "family.csv")
    lo = pd.read_csv(FOLDER / "longer" / "family.csv")
    c = lambda d, phi: d[(d["method"] == "compound") & (d["phi"] == phi)]["test_accuracy"].mean()  # noqa: E731
    found = fam[fam["family"] == "found"]
    assert f"+{100 * (c(lo, 3) - c(found, 3)):.1f} (phi 3)" in page
    assert f"reaches {100 * min(c(found, 0), c(lo, 0)):.1f}-{100 * max(c(found, 3), c(lo, 3)):.1f} % test" in page

    eff = pd.read_csv(FOLDER / "efficiency.csv")
    above = eff[(eff["family"] == "found") & (eff["phi"] > 0)].sort_values("acc_per_train_minute", ascending=False)
    first = above.iloc[0]
    assert f"then found {first['method']} phi {first['phi']} ({first['acc_per_train_minute']:.3f})" in page


def test_the_verdicts_are_the_compare_modules(page: str) -> None:
    fam = pd.read_csv(FOLDER / "family.csv")
    found, b0 = fam[fam["family"] == "found"], fam[fam["family"] == "b0"]
    for r in paper_table(found, other=b0, labels=("found", "B0")).itertuples():
        assert f"| {r.claim} " in page and f"| {r.comparisons} " in page
    width3 = compare_methods(found).set_index(["phi", "b"]).loc[(3, "width")]
    assert f"phi 3  compound - width: {100 * width3['diff']:+.1f}" in page and f"p {width3['p']:.3f}" in page
    assert "undecided: one seed" in page  # Fig. 4: one run per network
    assert "outside the seed spread" not in page and "does not hold" not in page


def test_changed_data_change_the_page(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    fam = pd.read_csv(d / "family.csv")
    row = (fam["family"] == "found") & (fam["method"] == "width") & (fam["phi"] == 1)
    fam.loc[row, "test_accuracy"] -= 0.05
    fam.to_csv(d / "family.csv", index=False)
    shutil.copy(FOLDER / "report.md", d / "report.md")
    shutil.copy(FOLDER / "tables.md", d / "tables.md")
    assert cifar10_page.main(["--dir", str(d), "--check"]) == 1  # stale, and nothing written
    assert (d / "report.md").read_text() == (FOLDER / "report.md").read_text()
    assert cifar10_page.main(["--dir", str(d)]) == 0
    new = (d / "report.md").read_text()
    assert f"{100 * fam[row]['test_accuracy'].mean():.1f} [" in new
    assert f"{100 * fam[row]['test_accuracy'].mean():.1f} [" not in (FOLDER / "report.md").read_text()


def test_a_search_space_that_no_longer_rebuilds_the_base_is_refused(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    d = _copy(tmp_path)
    trials = pd.read_csv(d / "trials.csv")
    trials.loc[trials["reward"].idxmax(), "macs"] += 1
    trials.to_csv(d / "trials.csv", index=False)
    assert cifar10_page.main(["--dir", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the run recorded" in err and "search space changed" in err
