"""``effnas export``: rebuild any search trial's network as a spec JSON (for train/grid/models)."""

from __future__ import annotations

import argparse
import json

import optuna

from nas import open_storage
from search_spaces import NetworkSpec


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="write a search trial's network as a spec JSON",
                       description="Rebuild trial N of a search study from its stored block strings.")
    p.add_argument("--storage", required=True, help="the study's storage URL (e.g. sqlite:///out/study.db)")
    p.add_argument("--study", default="search", help="study name (default: search)")
    p.add_argument("--trial", type=int, required=True, help="trial number")
    p.add_argument("-o", "--output", required=True, help="spec .json to write")
    p.set_defaults(func=run)


def export_spec(storage: str, study: str, number: int) -> NetworkSpec:
    """The network of trial ``number`` of ``study``."""
    st = open_storage(storage)
    if study not in {s.study_name for s in optuna.get_all_study_summaries(st)}:
        raise ValueError(f"no study {study!r} in {storage}: check --study")
    trials = optuna.load_study(study_name=study, storage=st).get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise ValueError(f"study {study!r} has no trial {number}: numbers run 0..{len(trials) - 1}")
    spec = match[0].user_attrs.get("spec")
    if not spec:
        raise ValueError(f"trial {number} has no stored spec (it did not reach sampling): pick another trial")
    data = json.loads(spec)
    if "stages" not in data:
        raise ValueError(f"trial {number} is a benchmark table's cell ({match[0].user_attrs.get('blocks')}), not a "
                         f"network: its choices are the trial's params and OUT/best_arch.json")
    return NetworkSpec.from_dict(data)


def run(args: argparse.Namespace) -> int:
    spec = export_spec(args.storage, args.study, args.trial)
    spec.save(args.output)
    print(f"trial {args.trial}: {' '.join(json.loads(spec.to_json())['stages'])} -> {args.output}")
    return 0
