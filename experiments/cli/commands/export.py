"""``effnas export``: rebuild any search trial's network as a spec JSON (for train/grid/models), or
write any network as ONNX (``--onnx``: a registered model, spec JSON, weights file or run directory)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna
import torch

import effnas.search_spaces as ss
from effnas.experiments.cli.commands import _common as c
from effnas.experiments.train import guard
from effnas.experiments.weights.onnx_export import compare_onnx, export_onnx, model_for_export
from effnas.nas import open_storage
from effnas.nas.study import missing_study, study_names
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.block import MAX_CHANNELS, MAX_RESOLUTION
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="write a search trial's network as a spec JSON, or any network as ONNX",
                       description="Rebuild trial N of a search study from its stored block strings (-o spec.json), "
                       "or write a network as ONNX (--onnx OUT.onnx, checked against onnxruntime).",
                       epilog=c.examples(
                           ("effnas export --storage sqlite:///runs/search/study.db --trial 7 -o t7.json",
                            "trial 7 of the search in runs/search as a spec that train, grid and family take"),
                           ("effnas export --onnx b0.onnx --model efficientnet_b0",
                            "a registered model as ONNX, compared with onnxruntime"),
                           ("effnas export --onnx t7.onnx --storage sqlite:///runs/search/study.db --trial 7 "
                            "--resolution 64", "a search trial as ONNX at 64 px"),
                       ))
    p.add_argument("--storage", metavar="URL", help="the study's storage URL (e.g. sqlite:///out/study.db)")
    p.add_argument("--study", metavar="NAME", default="search", help="study name (default: %(default)s)")
    p.add_argument("--trial", type=int, metavar="N", help="trial number")
    c.output_file_arg(p, help="spec .json to write (trial export)")
    p.add_argument("--onnx", metavar="OUT.onnx",
                   help="write an ONNX file of --model (or of the trial; needs effnas[deploy])")
    p.add_argument("--model", help="for --onnx: a registered name, spec .json, weights .pt or run directory")
    p.add_argument("--resolution", type=int, metavar="N", help="for --onnx: input pixels (default: the spec's)")
    p.add_argument("--num-classes", type=int, metavar="N", help="for --onnx of a name or spec: classifier size "
                   "(default: the model's)")
    p.add_argument("--no-check", action="store_true", help="for --onnx: skip the onnxruntime comparison")
    p.set_defaults(func=run)


def export_spec(storage: str, study: str, number: int) -> NetworkSpec:
    """The network of trial ``number`` of ``study``."""
    st = open_storage(storage)
    names = study_names(st)
    if study not in names:
        raise missing_study(study, storage, names, fix="give one of them as --study")
    trials = optuna.load_study(study_name=study, storage=st).get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise UserError(f"study {study!r} has no trial {number}: numbers run 0..{len(trials) - 1}")
    spec = match[0].user_attrs.get("spec")
    if not spec:
        raise UserError(f"trial {number} has no stored spec (it did not reach sampling): pick another trial")
    data = json.loads(spec)
    if "stages" not in data:
        raise UserError(f"trial {number} is a benchmark table's cell ({match[0].user_attrs.get('blocks')}), not a "
                         f"network: its choices are the trial's params and OUT/best_arch.json")
    return NetworkSpec.from_dict(data)


def _is_spec(path: Path) -> bool:
    """Whether ``path`` is a spec JSON (a file export may replace)."""
    try:
        NetworkSpec.load(path)
    except (ValueError, OSError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if args.onnx:
        if args.output:
            raise UserError("-o writes a trial's spec JSON: export the ONNX file and the spec in two calls")
        return run_onnx(args)
    onnx_only = [f for f in ("model", "resolution", "num_classes") if getattr(args, f) is not None] + \
        (["no_check"] if args.no_check else [])
    if onnx_only:
        raise UserError(f"--{onnx_only[0].replace('_', '-')} applies to ONNX export: add --onnx OUT.onnx")
    if args.storage is None or args.trial is None or args.output is None:
        raise UserError("give --storage, --trial and -o OUT.json (a trial's spec), or --onnx OUT.onnx with --model")

    db = args.storage.removeprefix("sqlite:///").removeprefix("journal:") if "://" not in args.storage or \
        args.storage.startswith("sqlite:///") else ""
    out = guard.out_file(args.output, "-o", accept=_is_spec, protect=(db,) if db else ())
    spec = export_spec(args.storage, args.study, args.trial)
    spec.save(out)
    print(f"trial {args.trial}: {' '.join(json.loads(spec.to_json())['stages'])} -> {args.output}")
    return 0


def run_onnx(args: argparse.Namespace) -> int:
    for flag, v, hi in (("--resolution", args.resolution, MAX_RESOLUTION),
                        ("--num-classes", args.num_classes, MAX_CHANNELS)):
        if v is not None and not 1 <= v <= hi:
            raise UserError(f"{flag} must be an integer in [1, {hi}], got {v}")
    guard.out_file(args.onnx, "--onnx", accept=lambda p: p.suffix.lower() == ".onnx")

    if args.model is not None:
        spec, model = model_for_export(args.model, num_classes=args.num_classes)
    elif args.storage is not None and args.trial is not None:
        spec = export_spec(args.storage, args.study, args.trial)
        if args.num_classes is not None:
            spec = ss.NetworkSpec.from_dict({**spec.to_dict(), "num_classes": args.num_classes})
        torch.manual_seed(0)
        model = ss.build(spec).eval()
    else:
        raise UserError("--onnx needs --model REF (a name, spec .json, weights .pt or run directory) "
                         "or --storage and --trial")
    res = args.resolution or spec.resolution
    out = export_onnx(model, args.onnx, resolution=res)
    check = "" if args.no_check else f"; onnxruntime max |diff| {compare_onnx(out, model, resolution=res):.2e}"
    print(f"{spec.name} at {res} px -> {out} ({out.stat().st_size / 1e6:.1f} MB){check}")
    return 0
