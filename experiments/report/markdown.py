"""The experiment report: one Markdown file and one self-contained HTML file per run directory.

:func:`write_report` reads what the pipeline's stages left in the run directory and writes
``report.md`` (images linked by relative path) and ``report.html`` (images embedded as base64
data URIs, so the file can be mailed or attached on its own). Expected layout, every part optional::

    search/pareto.png  search/trials.csv  search/best_spec.json
    grid/grid.csv      grid/coefficients.json
    family/family.csv  curves/*.png  curves/*.json

A section whose files are missing says "not run" instead of failing, so a report can be written
after any stage (or after an interrupted run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.experiments.report import tables as report_tables
from effnas.experiments.report.escape import html_safe_json
from effnas.experiments.report.findings import findings
from effnas.experiments.report.provenance import provenance
from effnas.experiments.report.reading import read_csv as _read_csv
from effnas.experiments.report.reading import read_json as _read_json
from effnas.experiments.report.reading import value_column
from effnas.experiments.report.render import Block, render_html, render_markdown
from effnas.experiments.report.verdicts import verdict_tables
from effnas.nas.measure import COST_NAMES, reward_formula
from effnas.search_spaces import encode_block, load_spec
from effnas.search_spaces.common.atomic import atomic_text
from effnas.search_spaces.cost import cost
from effnas.search_spaces.spec import NetworkSpec

#: Where a search's chosen baseline may be written, in order of preference.
BASELINE_FILES = ("baseline.json", "search/best_spec.json", "search/best.json")
#: Columns of ``trials.csv`` that rank trials (the first present wins; higher is better).
RANK_COLUMNS = ("objective", "reward", "score", "value", "val_accuracy", "accuracy")
#: Trials shown in the report.
TOP_TRIALS = 10
#: Rows shown of any other table (the CSV holds them all).
MAX_ROWS = 40


def write_report(run_dir: str | Path, *, config: dict[str, Any], stages: dict[str, Any],
                 baseline: NetworkSpec | str | None = None, title: str | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``run_dir``.

    Args:
        run_dir: the run directory (created if missing).
        config: the experiment config as plain data (``ExperimentConfig.to_dict()``).
        stages: per stage (``search``, ``grid``, ``family``, ``curves``, ...) a dict with at least
            ``seconds`` (wall time) and optionally ``status``; a bare number is taken as seconds.
        baseline: the chosen baseline (a spec, a registered name or a spec JSON path); default:
            the first of :data:`BASELINE_FILES` in ``run_dir``, else ``config["train"]["model"]``.
        title: the report's heading (default: from ``config["name"]``).

    Returns:
        The paths of ``report.md`` and ``report.html``.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    blocks: list[Block] = [Block("h1", title or f"effnas experiment: {config.get('name', run.name)}", plain=True)]
    if config.get("description"):
        blocks.append(Block("p", str(config["description"]), plain=True))
    blocks += _findings_section(run, config, stages, baseline)
    blocks += _stages_section(stages)
    blocks += _failures_section(run, stages)
    blocks += _explore_section(run, config, baseline)
    blocks += _search_section(run, config)
    blocks += _baseline_section(run, config, baseline)
    blocks += _grid_section(run)
    blocks += _family_section(run)
    blocks += _verdicts_section(run)
    blocks += _provenance_section(config, stages)
    md, htm = run / "report.md", run / "report.html"
    atomic_text(md, render_markdown(blocks, run))
    atomic_text(htm, render_html(blocks, title=blocks[0].text))
    return md, htm


# ---- sections ---------------------------------------------------------------------------------

def _not_run(what: str, missing: str) -> Block:
    return Block("p", f"*{what}: not run* (no `{missing}` in the run directory).")


def _seconds(info: Any) -> float | None:
    v = info.get("seconds") if isinstance(info, dict) else info
    return float(v) if isinstance(v, int | float) else None


def _findings_section(run: Path, config: dict[str, Any], stages: dict[str, Any],
                      baseline: NetworkSpec | str | None) -> list[Block]:
    found = findings(run, config=config, stages=stages, baseline=_resolve_baseline(run, config, baseline)[0])
    return [Block("h2", "Findings"), Block("p", "Computed from this run's files: means with their 95 % interval and n, "
                                                "verdicts by the rule of docs/statistics.md (docs/experiments.md)."),
            Block("ul", items=tuple(found))] if found else []


def _stages_section(stages: dict[str, Any]) -> list[Block]:
    out = [Block("h2", "Stages")]
    if not stages:
        return out + [Block("p", "*No stage has run.*")]
    rows = []
    for name, info in stages.items():
        s = _seconds(info)
        status = info.get("status", "completed") if isinstance(info, dict) else "completed"
        rows.append({"stage": name, "status": status, "wall time": _duration(s) if s is not None else "-"})
    total = sum(s for s in (_seconds(i) for i in stages.values()) if s is not None)
    rows.append({"stage": "total", "status": "", "wall time": _duration(total)})
    return out + [Block("table", frame=pd.DataFrame(rows))]


def _explore_section(run: Path, config: dict[str, Any], baseline: NetworkSpec | str | None) -> list[Block]:
    from effnas.experiments.report.explorable import explore_data, explore_html  # lazy: pulls in matplotlib

    data = explore_data(run, config, _resolve_baseline(run, config, baseline)[0])
    return [Block("h2", "Explore"),
            Block("p", "In `report.html`: the baseline's architecture over phi (slider; click a block), the "
                       "search's trials (hover, click for the spec JSON) and the scaling curves (toggle methods "
                       "and the fit band). Open it in a browser; it needs no network."),
            Block("html", explore_html(data))]


def _search_section(run: Path, config: dict[str, Any]) -> list[Block]:
    out = [Block("h2", "Baseline search")]
    pareto, trials = run / "search" / "pareto.png", run / "search" / "trials.csv"
    if not pareto.is_file() and not trials.is_file():
        return out + [_not_run("Search", "search/")]
    df = _read_csv(trials) if trials.is_file() else pd.DataFrame()
    info = _read_json(run / "search" / "pareto.json") if (run / "search" / "pareto.json").is_file() else {}
    column, name, label = value_column(df.columns, info, config)  # a proxy's or supernet's value is a score
    if pareto.is_file():
        cost = str(info.get("cost") or "macs")
        formula = reward_formula(name, cost, params=bool((info.get("objective") or {}).get("v")))
        out.append(Block("img", f"Search: {label} against {COST_NAMES.get(cost, 'latency')} of the trials "
                                f"and their Pareto front (reward = {formula}).", path=pareto))
    if trials.is_file():
        df = df.rename(columns={column: name})  # a search from before scores were named
        rank = next((c for c in RANK_COLUMNS if c in df.columns), None)
        if rank is not None:
            df = df.sort_values(rank, ascending=False, na_position="last")
        note = f"ranked by `{rank}`" if rank else "in file order"
        out += [Block("h3", f"Top {min(TOP_TRIALS, len(df))} of {len(df)} trials ({note})"),
                Block("table", frame=df.head(TOP_TRIALS))]
    reeval = run / "search" / "reevaluation.json"
    if reeval.is_file():
        out += [Block("h3", "Is the winner distinguishable? (top candidates re-evaluated with another seed)"),
                Block("p", str(_read_json(reeval).get("line", "")) + " (rule: docs/search.md, docs/statistics.md)."),
                Block("table", frame=_read_csv(run / "search" / "reevaluation.csv"))]
    return out


def _resolve_baseline(run: Path, config: dict[str, Any], baseline: NetworkSpec | str | None) -> tuple[
        NetworkSpec | None, str]:
    if isinstance(baseline, NetworkSpec):
        return baseline, "given"
    ref: str | None = baseline
    source = "given"
    if ref is None:
        found = next((run / f for f in BASELINE_FILES if (run / f).is_file()), None)
        ref, source = (str(found), str(found.relative_to(run))) if found else (None, "")
    if ref is None:
        model = config.get("train", {}).get("model")
        ref, source = (model, "config train.model (no search result)") if model else (None, "")
    if ref is None:
        return None, ""
    try:
        return load_spec(ref), source
    except ValueError as e:
        return None, f"{ref}: {e}"


def _baseline_section(run: Path, config: dict[str, Any], baseline: NetworkSpec | str | None) -> list[Block]:
    from effnas.experiments.report.diagram import draw  # lazy: pulls in matplotlib

    out = [Block("h2", "Chosen baseline")]
    spec, source = _resolve_baseline(run, config, baseline)
    if spec is None:
        msg = f"*Baseline: not available* ({source})." if source else _not_run("Baseline", BASELINE_FILES[0]).text
        return out + [Block("p", msg)]
    res = config.get("data", {}).get("resolution") or spec.resolution
    c = cost(spec, resolution=res)
    out.append(Block("p", f"{spec.name} from {source}: {c.params:,} parameters, {c.macs / 1e6:.2f} M MACs "
                          f"at {res}x{res} px, {spec.num_blocks} blocks.", plain=True))  # the name is user text
    out.append(Block("code", "\n".join(encode_block(s) for s in spec.stages)))
    labels = {f"stages.{i}": encode_block(s) for i, s in enumerate(spec.stages)}
    table = pd.DataFrame([{
        "stage": s.name, "block": labels.get(s.name, ""),
        "output": f"{s.out_resolution}x{s.out_resolution}x{s.out_channels}" if s.name != "classifier"
        else str(s.out_channels),
        "params": f"{s.params:,}", "MACs": f"{s.macs:,}", "MACs %": f"{100 * s.macs / c.macs:.1f}"}
        for s in c.stages])
    out.append(Block("table", frame=table))
    diagram = draw(spec, run / "report_files" / "baseline.png", precomputed=c)
    out.append(Block("img", f"{spec.name}: stages, outputs and share of MACs.", path=diagram))
    return out


def _grid_section(run: Path) -> list[Block]:
    out = [Block("h2", "Compound-coefficient grid search")]
    grid, coef = run / "grid" / "grid.csv", run / "grid" / "coefficients.json"
    if not grid.is_file() and not coef.is_file():
        return out + [_not_run("Grid search", "grid/")]
    if coef.is_file():
        c = _read_json(coef)
        scalars = {k: v for k, v in c.items() if not isinstance(v, dict | list) and k != "picked_by"}  # the rule below
        out.append(Block("p", "Chosen coefficients: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in scalars.items())
                         + "."))
        out += [Block("p", line, plain=True) for line in report_tables.grid_noise(c)]
        a, b, g = (c.get(k) for k in ("alpha", "beta", "gamma"))
        if all(isinstance(v, int | float) for v in (a, b, g)):
            out.append(Block("p", f"alpha * beta^2 * gamma^2 = {a * b**2 * g**2:.3f} "  # type: ignore[operator]
                                  "(paper: 1.2, 1.1, 1.15 -> 1.92)."))
    if grid.is_file():
        df = report_tables.grid_points(_read_csv(grid))
        shown = report_tables.columns(df, report_tables.GRID_COLUMNS)
        out += [Block("h3", f"Grid ({len(df)} candidates; every run and column in grid/grid.csv)"),
                Block("table", frame=shown.head(MAX_ROWS))]
    return out


def _family_section(run: Path) -> list[Block]:
    out = [Block("h2", "Scaled family and scaling curves")]
    family = run / "family" / "family.csv"
    curves = sorted((run / "curves").glob("*.png")) if (run / "curves").is_dir() else []
    fits = sorted((run / "curves").glob("*.json")) if (run / "curves").is_dir() else []
    if not family.is_file() and not curves and not fits:
        return out + [_not_run("Family", "family/family.csv")]
    if family.is_file():
        df = _read_csv(family)
        out += [Block("h3", f"Members ({len(df)} runs; mean and 95 % t-interval over seeds, n = 1: no interval; "
                            "every run in family/family.csv)"),
                Block("table", frame=report_tables.member_summary(df).head(MAX_ROWS))]
    else:
        out.append(_not_run("Family training", "family/family.csv"))
    for png in curves:
        out.append(Block("img", png.stem.replace("_", " "), path=png))
    if fits:  # fits.json: a row per axis and method; any other JSON: a row of its flattened keys
        frames = [t if (t := report_tables.fit_table(d := _read_json(f))) is not None else
                  pd.DataFrame([{"fit": f.stem, **{k: _fmt(v) for k, v in _flatten(d).items()}}]) for f in fits]
        out += [Block("h3", "Fitted curve parameters"), Block("table", frame=pd.concat(frames, ignore_index=True))]
    elif (run / "curves").is_dir() or family.is_file():
        out.append(_not_run("Curve fits", "curves/*.json"))
    return out


def _verdicts_section(run: Path) -> list[Block]:
    family = run / "family" / "family.csv"
    if not family.is_file():
        return []
    out = []
    for i, (heading, body) in enumerate(verdict_tables(family)):
        out.append(Block("h2" if i == 0 else "h3", heading))
        out.append(Block("table", frame=body) if isinstance(body, pd.DataFrame) else Block("p", body))
    return out


def _failures_section(run: Path, stages: dict[str, Any]) -> list[Block]:
    bad = report_tables.failures(run, stages)
    if bad.empty:
        return []
    return [Block("h2", f"Failures ({len(bad)})"),
            Block("p", "These runs did not complete; fix the cause and re-run with --resume (finished runs are kept)."),
            Block("table", frame=bad)]


def _provenance_section(config: dict[str, Any], stages: dict[str, Any]) -> list[Block]:
    seeds = {"run.seed": config.get("run", {}).get("seed"), "train.seed": config.get("train", {}).get("seed"),
             "family.seeds": config.get("family", {}).get("seeds")}
    p = provenance(seeds={k: v for k, v in seeds.items() if v is not None})
    rows = [{"item": k, "value": "" if v is None else str(v)} for k, v in p["versions"].items()]
    rows += [{"item": k, "value": "" if v is None else str(v)} for k, v in {**p["machine"], **p["device"]}.items()]
    rows += [{"item": "git", "value": p["git"] or ""}, {"item": "written (UTC)", "value": p["time_utc"]}]
    rows += [{"item": f"seed {k}", "value": str(v)} for k, v in p["seeds"].items()]
    rows += [{"item": f"wall time {k}", "value": _duration(s) if (s := _seconds(v)) is not None else "-"}
             for k, v in stages.items()]
    return [Block("h2", "Provenance"), Block("table", frame=pd.DataFrame(rows)),
            Block("h3", "Configuration"), Block("code", html_safe_json(json.dumps(config, indent=2, default=str)))]


# ---- helpers ---------------------------------------------------------------------------------

def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _duration(seconds: float | None) -> str:
    """``83.2`` -> ``1 min 23 s``; ``None`` -> ``not run``.

    >>> _duration(83.2), _duration(7.25), _duration(None)
    ('1 min 23 s', '7.2 s', 'not run')
    """
    if seconds is None:
        return "not run"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"
