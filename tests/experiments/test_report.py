from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

import effnas.search_spaces as ss
from effnas.experiments.config.schema import load_config
from effnas.experiments.report.markdown import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path: Path, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(3, 2), dpi=50)
    ax = fig.add_subplot()
    ax.plot([1, 2, 3], [0.5, 0.7, 0.75], "o-")
    ax.set_title(title)
    fig.savefig(path)


def _synthetic_run(run: Path) -> None:
    """A small run directory shaped like the pipeline's output."""
    (run / "search").mkdir(parents=True)
    pd.DataFrame({
        "trial": range(12), "status": ["completed"] * 11 + ["pruned"],
        "val_accuracy": [0.5 + 0.03 * i for i in range(12)],
        "macs": [1_000_000 + 50_000 * i for i in range(12)],
        "objective": [0.5 + 0.02 * (i % 7) for i in range(12)],
        "stages": ["|".join(["r1_k3_s11_e1_i32_o16_se0.25"] * 7)] * 12,
    }).to_csv(run / "search" / "trials.csv", index=False)
    _png(run / "search" / "pareto.png", "pareto")
    (run / "grid").mkdir()
    pd.DataFrame({"alpha": [1.2, 1.1, 1.3], "beta": [1.1, 1.15, 1.05], "gamma": [1.15, 1.15, 1.1],
                  "val_accuracy": [0.81, 0.80, 0.79]}).to_csv(run / "grid" / "grid.csv", index=False)
    (run / "grid" / "coefficients.json").write_text(json.dumps({"alpha": 1.2, "beta": 1.1, "gamma": 1.15}))
    (run / "family").mkdir()
    pd.DataFrame({"phi": [0, 0, 1, 1], "seed": [0, 1, 0, 1], "macs": [1e6, 1e6, 2e6, 2e6],
                  "test_accuracy": [0.7, 0.71, 0.75, 0.74]}).to_csv(run / "family" / "family.csv", index=False)
    _png(run / "curves" / "accuracy_vs_macs.png", "curve")
    (run / "curves" / "accuracy_vs_macs.json").write_text(json.dumps({"a": 0.9, "b": 0.3, "c": -0.5, "r2": 0.98}))


def _images_in_html(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]


def test_full_report(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _synthetic_run(run)
    (run / "search" / "best_spec.json").write_text(ss.get("tiny").to_json())
    cfg = load_config("demo").to_dict()
    md, htm = write_report(run, config=cfg, stages={"search": {"seconds": 61.0}, "grid": 12.5,
                                                    "family": {"seconds": 30, "status": "completed"}})
    text = md.read_text()
    assert "not run" not in text.split("## Provenance")[0]
    for needle in ("## Baseline search", "Top 10 of 12 trials (ranked by `objective`)", "r2_k5_s22_e4_i24_o32_se0.25",
                   "alpha = 1.2", "= 1.920", "Members (4 runs;", "Fitted curve parameters", "| 0.98 ", "torch",
                   "1 min 01 s", "search/best_spec.json"):
        assert needle in text, needle
    # Images are linked relatively in Markdown and all exist.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(links) >= {"search/pareto.png", "curves/accuracy_vs_macs.png", "report_files/baseline.png"}
    assert all((run / link).is_file() and not Path(link).is_absolute() for link in links)
    # The HTML embeds every image (valid PNGs) and links no file.
    page = htm.read_text()
    images = _images_in_html(page)
    assert len(images) == len(links) and all(i.startswith(PNG_MAGIC) for i in images)
    assert "src='search/" not in page and "<table" in page and "ranked by <code>objective</code>" in page
    # The top trial by objective leads the table.
    top = text.split("Top 10")[1].splitlines()[4]
    assert top.split("|")[1].strip() == "6"
    assert "r1_k3_s11_e1_i32_o16_se0.25\\|r1_k3_s11_e1_i32_o16_se0.25\\|r..." in text  # cut, and | escaped
    assert "r1_k3_s11_e1_i32_o16_se0.25|r1_k3_s11_e1_i32_o16_se0.25|r...</td>" in htm.read_text()


def test_empty_run_dir_degrades_to_not_run(tmp_path: Path) -> None:
    md, htm = write_report(tmp_path / "empty", config={"name": "x"}, stages={})
    text = md.read_text()
    for section in ("Search: not run", "Baseline: not run", "Grid search: not run", "Family: not run"):
        assert section in text, section
    assert "Provenance" in text and "python" in text
    assert _images_in_html(htm.read_text()) == []


def test_partial_run_and_bad_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "search").mkdir(parents=True)
    (run / "search" / "trials.csv").write_text("")  # interrupted before the header was written
    (run / "grid").mkdir()
    (run / "grid" / "coefficients.json").write_text("{not json")
    md, _ = write_report(run, config={"train": {"model": "tiny"}}, stages={"search": {"seconds": 3.0},
                                                                            "grid": {"status": "failed"}})
    text = md.read_text()
    assert "cannot read trials.csv" in text and "cannot read coefficients.json" in text
    assert "config train.model (no search result)" in text  # baseline falls back to the configured model
    assert "Family: not run" in text and re.search(r"\| grid +\| failed +\| - ", text)


def test_unknown_baseline_is_reported_not_raised(tmp_path: Path) -> None:
    md, _ = write_report(tmp_path, config={"train": {"model": "no_such_model"}}, stages={})
    assert "Baseline: not available" in md.read_text()


def test_report_does_not_change_backend(tmp_path: Path) -> None:
    backend = matplotlib.get_backend()  # read now: other tests may have switched it after collection
    write_report(tmp_path, config={}, stages={})
    assert matplotlib.get_backend() == backend


def test_report_has_computed_verdicts_and_the_paper_table(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "family").mkdir(parents=True)
    # compound gains 5 points per phi, depth 2: seed noise +-0.2 points, 3 seeds.
    rows = [{"method": m, "phi": phi, "seed": s, "macs": 1e6 * 2**phi, "params": 1e4,
             "test_accuracy": 0.6 + gain * phi + 0.002 * (s - 1) + 0.001 * (s == 2) * phi}
            for m, gain in (("compound", 0.05), ("depth", 0.02)) for phi in range(3) for s in range(3)
            if not (m == "depth" and phi == 0)]
    pd.DataFrame(rows).to_csv(run / "family" / "family.csv", index=False)
    md, htm = write_report(run, config=load_config("demo").to_dict(), stages={})
    text = md.read_text()
    verdicts = text.split("## Verdicts (computed)")[1]
    assert "On test accuracy." in verdicts and "docs/statistics.md" in verdicts
    paper = verdicts.split("### Against the paper")[1].split("### Comparisons")[0]
    assert re.search(r"compound beats depth-only scaling at equal MACs \| Fig\. 8[^|]*\| 2 better \(of 2\) \| holds",
                     paper)
    comparisons = verdicts.split("### Comparisons")[1]
    assert re.search(r"\| 2 +\| compound +\| depth +\| 3/3 +\| \+6\.0 +\| \[\+6\.0, \+6\.0\] +\| \de[+-]\d+ +"
                     r"\| better ",
                     comparisons)
    assert "Against the paper" in htm.read_text()
def test_members_and_fits_show_n_and_the_t_interval_never_a_zero_spread(tmp_path: Path) -> None:
    """A member of one run shows 'n = 1' and no interval; one of three its 95 % t-interval; the fits
    of effnas curves are a row per axis and method with the held-out check."""
    from effnas.scaling import family, plot_curves

    run = tmp_path / "run"
    (run / "family").mkdir(parents=True)
    rows = []
    for m in family(ss.get("tiny"), range(5)):
        for seed in (0,) if m.phi == 1 else (0, 1, 2):
            acc = 0.95 - 0.5 * (m.macs / 1e6) ** -0.4 + 0.01 * seed
            rows.append({**m.row(), "seed": seed, "status": "completed", "val_accuracy": acc, "test_accuracy": acc})
    table = pd.DataFrame(rows)
    table.to_csv(run / "family" / "family.csv", index=False)
    plot_curves(table, run / "curves", metric="test_accuracy")
    md, htm = write_report(run, config={"name": "n"}, stages={})
    text = md.read_text()
    members = text.split("### Members")[1].split("### Fitted")[0]
    phi1 = 100 * (0.95 - 0.5 * (table[table.phi == 1].macs.iloc[0] / 1e6) ** -0.4)
    assert f"| {phi1:.2f} (n = 1) " in members and "95 % t-interval over seeds" in members
    assert "±" not in members and "0.00]" not in members
    phi0 = 100 * table[table.phi == 0].test_accuracy
    half = 4.303 * phi0.std() / 3**0.5  # t(0.975, 2 df)
    assert f"{phi0.mean():.2f} [{phi0.mean() - half:.2f}, {phi0.mean() + half:.2f}] (n = 3)" in members
    assert f"{phi1:.2f} (n = 1)" in htm.read_text()
    fits = text.split("### Fitted curve parameters")[1].split("## ")[0]
    body = [line for line in fits.strip().splitlines()[2:] if line.startswith("|")]
    assert [line.split("|")[1].strip() + " " + line.split("|")[2].strip() for line in body] == [
        "macs compound", "params compound"]  # one row per axis and method
    assert "phi 4 (fit to phi 0, 1, 2, 3)" in fits and "(n = 3)" in fits
