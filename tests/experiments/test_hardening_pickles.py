"""No code runs from a file effnas reads (issue 23): every ``torch.load`` passes ``weights_only=True``,
and a crafted checkpoint (a pickle whose ``__reduce__`` would create a marker file) fed through every
entry point that reads checkpoints ends in one line ``effnas: error: ...`` (exit 2) with the marker
never created."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from effnas.experiments.cli.main import main
from tests.experiments.test_fuzz import one_line_error

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["search_spaces", "nas", "scaling", "experiments", "tests", "bench"]


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears if pickled code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def crafted(path: Path, marker: Path, **tensors: torch.Tensor) -> Path:
    """A torch zip checkpoint at ``path`` holding tensors and the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(1), **tensors}, "hook": Payload(marker)}, path)
    return path


def test_every_torch_load_passes_weights_only() -> None:
    call = re.compile(r"torch\.load\(")
    bad = []
    for top in SOURCES:
        for f in sorted((ROOT / top).rglob("*.py")):
            text = f.read_text()
            for m in call.finditer(text):
                depth, i = 0, m.end() - 1
                while i < len(text):  # the call's text up to its closing parenthesis
                    depth += {"(": 1, ")": -1}.get(text[i], 0)
                    if depth == 0:
                        break
                    i += 1
                if "weights_only=True" not in text[m.start():i + 1]:
                    bad.append(f"{f.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}")
    assert not bad, "torch.load without weights_only=True at " + ", ".join(bad)


TRAIN = ["train", "--model", "tiny", "--dataset", "digits", "--epochs", "1", "--quiet", "--set", "train.threads=1"]
SUPERNET = ["--space", "nano", "--dataset", "shapes", "--data-fraction", "0.2", "--batch-size", "64", "--threads", "1",
            "--quiet"]


@pytest.fixture()
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "PWNED"


def _supernet_dir(tmp_path: Path, marker: Path) -> Path:
    """A supernet directory whose config.json is effnas's and whose supernet.pt is crafted."""
    from effnas.experiments.config.schema import load_config

    out = tmp_path / "sn"
    cfg = load_config(None, overrides=["search.space=nano", "data.dataset=shapes", "data.data_fraction=0.2",
                                       "train.batch_size=64", "train.threads=1", "supernet.epochs=1"])
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    crafted(out / "supernet.pt", marker)
    return out


def _run_dir(tmp_path: Path, marker: Path) -> Path:
    """An interrupted run: effnas's config.json, no metrics, a crafted last.pt and best.pt."""
    run = tmp_path / "run"
    assert main(TRAIN + ["--out", str(run)]) == 0
    (run / "metrics.json").unlink()
    crafted(run / "last.pt", marker)
    crafted(run / "best.pt", marker)
    return run


ENTRY_POINTS = {
    "train --resume": lambda w, m: TRAIN + ["--out", str(_run_dir(w, m)), "--resume"],
    "finetune --weights": lambda w, m: ["finetune", "--weights", str(crafted(w / "evil.pt", m)), "--model", "tiny",
                                        "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(w / "ft")],
    "finetune --weights RUN": lambda w, m: ["finetune", "--weights", str(_run_dir(w, m)), "--model", "tiny",
                                            "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(w / "ft")],
    "finetune --layout": lambda w, m: [
        "finetune", "--weights", str(crafted(w / "evil.pt", m)), "--layout", "timm", "--model", "tiny",
        "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(w / "ft")],
    "train init_from": lambda w, m: TRAIN + ["--set", f"train.init_from={crafted(w / 'evil.pt', m)}",
                                             "--out", str(w / "init")],
    "weights import": lambda w, m: ["weights", "import", str(crafted(w / "evil.pt", m)), "--layout", "timm",
                                    "--model", "tiny", "-o", str(w / "w.pt")],
    "export --onnx": lambda w, m: ["export", "--onnx", str(w / "x.onnx"), "--model", str(crafted(w / "evil.pt", m))],
    "export --onnx RUN": lambda w, m: ["export", "--onnx", str(w / "x.onnx"), "--model", str(_run_dir(w, m))],
    "search --estimator supernet": lambda w, m: [
        "search", "--space", "nano", "--dataset", "shapes", "--estimator", f"supernet:{_supernet_dir(w, m)}",
        "--strategy", "random", "--trials", "1", "--quiet", "--out", str(w / "s")],
    "search --prefilter supernet": lambda w, m: [
        "search", "--space", "nano", "--dataset", "shapes", "--prefilter", f"supernet:{_supernet_dir(w, m)}",
        "--trainer", "surrogate", "--strategy", "random", "--trials", "1", "--quiet", "--out", str(w / "s")],
    "supernet train --resume": lambda w, m: ["supernet", "train", *SUPERNET, "--epochs", "1", "--out",
                                             str(_supernet_dir(w, m)), "--resume"],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_crafted_checkpoint_runs_no_code(entry: str, tmp_path: Path, marker: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = ENTRY_POINTS[entry](tmp_path, marker)
    capsys.readouterr()
    line = one_line_error(capsys, main(argv))
    assert not marker.exists(), f"{entry}: pickled code ran"
    assert "weights_only" in line or "plain tensor" in line, line
