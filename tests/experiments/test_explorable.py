"""The data behind report.html's interactive section, read from a run directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from effnas.experiments.report.explorable import curves_data, explore_data, pareto_data
from effnas.nas.pareto import pareto_front
from effnas.scaling import PAPER, family
from effnas.search_spaces import load_spec


def test_pareto_data_is_the_finished_trials_and_their_front(explore_run: Path) -> None:
    data = pareto_data(explore_run)
    assert isinstance(data, dict)
    trials = pd.read_csv(explore_run / "search" / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    assert [t["number"] for t in data["trials"]] == list(done["number"]) and 8 not in done["number"].values
    front = pareto_front(list(zip(done["accuracy"], done["macs"], strict=True)))
    assert data["front"] == [int(done["number"].iloc[i]) for i in front]
    assert data["target"] == 1e6
    t = data["trials"][2]
    row = done[done["number"] == 2].iloc[0]
    assert t["tip"][:4] == ["trial 2", f"accuracy {100 * row['accuracy']:.2f} %", f"MACs {int(row['macs']):,}",
                            f"reward {row['reward']:.4f}"]
    assert t["tip"][4:] == row["blocks"].split()
    assert json.loads(t["spec"]) == json.loads(row["spec"])


def test_curves_data_follows_curves_csv_and_bands(explore_run: Path) -> None:
    data = curves_data(explore_run)
    assert isinstance(data, dict) and data["metric"] == "test accuracy"
    points = pd.read_csv(explore_run / "curves" / "curves.csv")
    assert [m["method"] for m in data["methods"]] == ["compound", "depth", "width", "resolution"]
    compound = data["methods"][0]
    mine = [(p["x"], p["y"]) for p in compound["macs"]["points"]]
    theirs = points[points["method"] == "compound"].sort_values("macs")
    assert mine == list(zip(theirs["macs"].astype(float), theirs["mean"], strict=True))
    # Error bars are the 95 % t-interval over seeds (two seeds here), and the tip says n.
    bars = [(p["lo"], p["hi"]) for p in compound["macs"]["points"]]
    assert bars == list(zip(theirs["ci_low"], theirs["ci_high"], strict=True))
    assert compound["macs"]["points"][0]["tip"].startswith("compound phi 0: test accuracy (%) ")
    assert compound["macs"]["points"][0]["tip"].endswith("(n = 2), 863,168 macs")
    assert data["interval"] == "95 % t-interval over seeds"
    assert compound["macs"]["fit"].startswith("error = ") and len(compound["macs"]["line"]) == 80
    assert all(lo <= y <= hi for _, y, lo, hi in compound["macs"]["line"])
    assert data["methods"][1]["macs"]["fit"].startswith("not fitted") and data["methods"][1]["macs"]["line"] == []


def test_viewer_uses_the_run_baseline_resolution_and_coefficients(explore_run: Path) -> None:
    base = load_spec(str(explore_run / "baseline.json"), resolution=24)
    data = explore_data(explore_run, {"data": {"resolution": 24}}, base)
    members = family(base, range(9), coefficients=PAPER)
    assert [m["resolution"] for m in data["viewer"]["members"]] == [m.spec.resolution for m in members]
    assert data["viewer"]["members"][0]["resolution"] == 24 and "grid/coefficients.json" in data["viewer"]["source"]
    assert explore_data(explore_run, {"family": {"official": True}}, base)["viewer"]["official"] is True


def test_bad_files_say_why_instead_of_failing(tmp_path: Path) -> None:
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "trials.csv").write_text("")
    (tmp_path / "curves").mkdir()
    (tmp_path / "curves" / "curves.csv").write_text("method,phi\ncompound,0\n")
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid" / "coefficients.json").write_text("{not json")
    data = explore_data(tmp_path, {}, load_spec("tiny"))
    assert data["pareto"].startswith("cannot read trials.csv")
    assert data["curves"] == "curves.csv has no column 'macs'"
    assert "malformed coefficients JSON" in data["viewer"]["source"]


def test_report_has_the_section_in_html_and_a_pointer_in_markdown(explore_run: Path, tmp_path: Path) -> None:
    page = (explore_run / "report.html").read_text()
    md = (explore_run / "report.md").read_text()
    for needle in ("class='effnas-viewer'", "class='effnas-pareto'", "class='effnas-curves'", "id='pareto-data'"):
        assert needle in page and needle not in md
    assert "## Explore" in md and "report.html" in md
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    empty = explore_data(tmp_path, {}, None)
    assert empty == {"viewer": "no baseline", "pareto": "not run (no search/trials.csv)",
                     "curves": "not run (no curves/curves.csv)"}


def _page_data(page: str, element_id: str) -> dict:
    found = re.search(rf"<script type='application/json' id='{element_id}'>(.*?)</script>", page, re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_a_trained_search_is_charted_as_accuracy(explore_run: Path) -> None:
    data = _page_data((explore_run / "report.html").read_text(), "pareto-data")
    assert data["measure"] == "accuracy" and data["ylabel"] == "validation accuracy"
    assert "Search: accuracy against MACs" in (explore_run / "report.html").read_text()


def test_a_proxy_search_is_charted_as_a_score(tmp_path: Path) -> None:
    """A real proxy search (synflow on digits, 3 candidates): the report's chart, its tooltips, the
    caption and the trial table say score and what it is; nothing calls it an accuracy."""
    from effnas.experiments.estimators.proxy import ProxyTrainer
    from effnas.experiments.report.markdown import write_report
    from effnas.nas import Objective, SearchConfig, get_space, run_search, write_results

    space = get_space("tiny")
    cfg = SearchConfig(space, Objective(target=1.5e6), strategy="random", trials=3,
                       train={"dataset": "digits", "estimator": "proxy:synflow", "batch_size": 16, "val_fraction": 0.1,
                              "data_fraction": 1.0, "threads": 1, "seed": 0})
    study = run_search(cfg, ProxyTrainer(space, "synflow"), progress=lambda *a: None)
    write_results(study, tmp_path / "search", cfg.objective)
    write_report(tmp_path, config={"name": "proxy"}, stages={"search": {"seconds": 1.0}})
    page = (tmp_path / "report.html").read_text()
    data = _page_data(page, "pareto-data")
    assert data["measure"] == "score" and data["ylabel"] == "synflow proxy score (rank-normalised)"
    trials = pd.read_csv(tmp_path / "search" / "trials.csv")
    assert [t["value"] for t in data["trials"]] == trials["score"].tolist()
    assert all(t["tip"][1].startswith("score 0.") for t in data["trials"])
    assert "Search: score against MACs" in page
    md = (tmp_path / "report.md").read_text()
    assert "Search: synflow proxy score (rank-normalised) against MACs" in md and "reward = score x (MACs/T)^w" in md
    section = md.split("## Baseline search")[1].split("## Chosen baseline")[0]
    header = [c.strip() for c in section.split("### Top 3 of 3 trials")[1].splitlines()[2].split("|")]
    assert header[4:7] == ["strategy", "score", "proxy_score"] and "accuracy" not in section


def test_an_older_proxy_run_is_charted_by_its_config(explore_run: Path) -> None:
    """A search written before pareto.json named its measure kept a proxy's rank as ``accuracy``:
    the run's config (search.estimator) makes it the score it was."""
    data = pareto_data(explore_run, {"search": {"estimator": "proxy:jacob_cov"}})
    assert isinstance(data, dict) and data["measure"] == "score"
    assert data["ylabel"] == "jacob_cov proxy score (rank-normalised)"
    trials = pd.read_csv(explore_run / "search" / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    assert [t["value"] for t in data["trials"]] == done["accuracy"].tolist()
    assert data["trials"][0]["tip"][1] == f"score {done['accuracy'].iloc[0]:.3f}"
