"""The committed files of the CIFAR-10 study (docs/results/cifar10/), read into one record.

Everything the page (``cifar10_page.py``) says comes from here: the CSV and JSON files that
``bench/cifar10_report.py`` collected from the study's run directory, and ``run_report.html``, the
pipeline's own report, whose Provenance table (versions, machine, device, git commit, stage wall
times) and Configuration block (the run's resolved config) are the only record of those facts.
Nothing here needs the original run directory.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import effnas.search_spaces as ss
from effnas.experiments.data.datasets import Dataset, split
from effnas.experiments.data.tensorloader import Split
from effnas.nas.space import get_space
from effnas.scaling.analysis.compare import compare_methods, compare_sizes
from effnas.search_spaces.common.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
#: CIFAR-10's published split (Krizhevsky 2009; the archive's train/ and test/ folders): the training
#: pool the runs draw their validation and training subsets from, the test images, the classes.
CIFAR10_POOL, CIFAR10_TEST, CIFAR10_CLASSES = 50_000, 10_000, 10


@dataclass(frozen=True)
class Study:
    """The study's results, as committed."""

    folder: Path
    trials: pd.DataFrame      # the search's trials (trials.csv)
    grid: pd.DataFrame        # the coefficient grid at phi = 1 (grid.csv)
    found: pd.DataFrame       # the found family and its single-dimension baselines (family.csv, family = found)
    b0: pd.DataFrame          # EfficientNet-B0 scaled by the paper's coefficients (family.csv, family = b0)
    backbones: pd.DataFrame   # MobileNetV2 / ResNet-18 at phi 2 (backbones.csv)
    efficiency: pd.DataFrame  # accuracy per MAC and per training second (efficiency.csv)
    fits: dict[str, Any]      # power-law fits of the 4-epoch family (fits.json)
    bands: pd.DataFrame       # their 90 % bands (bands.csv)
    longer: pd.DataFrame      # the same family trained longer (longer/family.csv)
    longer_fits: dict[str, Any]
    longer_bands: pd.DataFrame
    fig4: pd.DataFrame        # width at four depth/resolution settings (fig4.csv)
    provenance: dict[str, str]       # run_report.html's Provenance table
    config: dict[str, Any]           # run_report.html's Configuration block
    stage_seconds: dict[str, float]  # wall time per pipeline stage, from the Provenance table
    #: compound against each single dimension (``compare_methods``) of "found", "longer" and each backbone
    methods: dict[str, pd.DataFrame]
    #: each method's largest member against the base (``compare_sizes``) of "found" and "longer"
    sizes: dict[str, pd.DataFrame]


def _csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path} does not exist: collect the study first (python bench/cifar10_report.py RUN_DIR)")
    return pd.read_csv(path)


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path} does not exist: collect the study first (python bench/cifar10_report.py RUN_DIR)")
    out: dict[str, Any] = json.loads(path.read_text())
    return out


def seconds(text: str) -> float:
    """Invert the run report's durations: ``'2 min 48 s'`` -> 168, ``'7.2 s'`` -> 7.2,
    ``'1 h 02 min'`` -> 3720.

    >>> seconds('2 min 48 s'), seconds('0.0 s'), seconds('1 h 02 min')
    (168.0, 0.0, 3720.0)
    """
    m = re.fullmatch(r"(?:(\d+) h )?(?:(\d+) min)?(?: ?([\d.]+) s)?", text.strip())
    if not m or not any(m.groups()):
        raise UserError(f"unreadable wall time {text!r} in run_report.html: expected e.g. '2 min 48 s'")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return 3600 * h + 60 * mi + s


def read_run_report(path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The Provenance table (item -> value) and the Configuration JSON of a pipeline report."""
    if not path.is_file():
        raise UserError(f"{path} does not exist: copy the run's report.html there (bench/cifar10_report.py does)")
    text = path.read_text()
    start = text.find("<h2>Provenance</h2>")
    conf = re.search(r"<h3>Configuration</h3>\s*<pre>(.*?)</pre>", text[start:], re.S) if start >= 0 else None
    if start < 0 or conf is None:
        raise UserError(f"{path} has no Provenance section with a Configuration block: give the report.html "
                        f"that 'effnas run' wrote")
    table = text[start:start + conf.start()]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*</tr>", table, re.S)
    prov = {html.unescape(k).strip(): html.unescape(v).strip() for k, v in rows}
    return prov, json.loads(html.unescape(conf.group(1)))


def load(folder: str | Path) -> Study:
    """Every committed file of the study in ``folder`` (default layout of docs/results/cifar10)."""
    d = Path(folder)
    fam = _csv(d / "family.csv")
    prov, config = read_run_report(d / "run_report.html")
    stages = {k.removeprefix("wall time "): seconds(v) for k, v in prov.items() if k.startswith("wall time ")}
    found = fam[fam["family"] == "found"].reset_index(drop=True)
    longer, backbones = _csv(d / "longer" / "family.csv"), _csv(d / "backbones.csv")
    parts = {"found": found, "longer": longer, **dict(list(backbones.groupby("backbone", sort=False)))}
    return Study(
        folder=d, trials=_csv(d / "trials.csv"), grid=_csv(d / "grid.csv"),
        found=found, b0=fam[fam["family"] == "b0"].reset_index(drop=True),
        backbones=backbones, efficiency=_csv(d / "efficiency.csv"), fits=_json(d / "fits.json"),
        bands=_csv(d / "bands.csv"), longer=longer,
        longer_fits=_json(d / "longer" / "fits.json"), longer_bands=_csv(d / "longer" / "bands.csv"),
        fig4=_csv(d / "fig4.csv"), provenance=prov, config=config, stage_seconds=stages,
        methods={str(k): compare_methods(v) for k, v in parts.items()},
        sizes={k: compare_sizes(parts[k]) for k in ("found", "longer")})


# ---- derived facts ---------------------------------------------------------------------------

def subset_sizes(config: dict[str, Any], *, seed: int = 0) -> dict[str, int]:
    """Images per split of one run, drawn by the trainer's own ``split`` (validation: the first
    ``val_fraction`` of a permutation of the pool seeded by the run's seed; training: the next
    ``data_fraction`` of the rest; test: fixed) on a stand-in pool of CIFAR-10's size; ``proxy``
    is the search's training subset (``search.train.data_fraction``)."""
    pool = Split(torch.zeros((CIFAR10_POOL, 1, 1, 1), dtype=torch.uint8), torch.zeros(CIFAR10_POOL, dtype=torch.int64))
    test = Split(torch.zeros((CIFAR10_TEST, 1, 1, 1), dtype=torch.uint8), torch.zeros(CIFAR10_TEST, dtype=torch.int64))
    ds = Dataset("cifar10", pool, test, tuple(map(str, range(CIFAR10_CLASSES))), True, (0.0,) * 3, (1.0,) * 3)
    data = config["data"]
    train, val, tst = split(ds, seed=seed, val_fraction=data["val_fraction"], data_fraction=data["data_fraction"])
    proxy, _, _ = split(ds, seed=seed, val_fraction=data["val_fraction"],
                        data_fraction=config["search"]["train"]["data_fraction"])
    return {"pool": CIFAR10_POOL, "train": len(train), "val": len(val), "test": len(tst), "proxy": len(proxy),
            "rest": CIFAR10_POOL - len(val)}


def found_base(study: Study) -> tuple[ss.NetworkSpec, pd.Series]:
    """The searched base network rebuilt from the best trial's block strings in the run's search
    space, checked against the parameters and MACs the run recorded (so it is the network that ran)."""
    t = study.trials.sort_values("reward", ascending=False).iloc[0]
    space = get_space(study.config["search"]["space"])
    assert not isinstance(space, str)
    spec = dataclasses.replace(space.to_spec(space.default_params()),  # type: ignore[union-attr]
                               stages=tuple(ss.decode_stages(str(t["blocks"]).split())))
    c = ss.counts(spec, int(study.config["data"]["resolution"]))
    if (c.params, c.macs) != (int(t["params"]), int(t["macs"])):
        raise UserError(f"trial {t['number']}'s blocks rebuild to {c.params} params / {c.macs} MACs, the run recorded "
                        f"{t['params']} / {t['macs']}: the search space changed since the study ran")
    return spec, t


def total_stride(spec: ss.NetworkSpec) -> int:
    """How much a network downsamples: the stem's stride (and pool) times every stage's stride."""
    s = spec.stem_stride * (2 if spec.stem_pool else 1)
    for b in spec.stages:
        s *= b.stride
    return s


def final_map(spec: ss.NetworkSpec, resolution: int) -> int:
    """Side of the last feature map at ``resolution`` px (``ceil`` per stride-2 step)."""
    side = resolution
    for step in [spec.stem_stride] + ([2] if spec.stem_pool else []) + [b.stride for b in spec.stages]:
        side = math.ceil(side / step)
    return side


def backbone_spec(name: str) -> ss.NetworkSpec:
    """A backbone of the study by its name in backbones.csv (the preset's spec files)."""
    return ss.load_spec(str(ROOT / "experiments" / "config" / "presets" / "specs" / f"{name}.json"))


def b0_spec() -> ss.NetworkSpec:
    return ss.get("efficientnet_b0", num_classes=CIFAR10_CLASSES)
