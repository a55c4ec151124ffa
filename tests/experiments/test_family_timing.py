"""A tiny trained family records measured time: training throughput from each run and latency at
batch 1 and batch N under the documented protocol, in family.csv, in each run's latency.json, and
as curve axes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from effnas.experiments.cli.main import main
from effnas.experiments.pipeline import timing

FAMILY = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-2",
          "--no-baselines", "--train", "--dataset", "digits", "--epochs", "1", "--data-fraction", "0.3",
          "--seeds", "2", "--latency-batch", "4", "--set", "train.threads=1", "--set", "train.batch_size=64"]


@pytest.mark.slow
def test_a_trained_family_has_measured_time_per_member(tmp_path, capsys, monkeypatch) -> None:
    assert main([*FAMILY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train img/s" in out and "ms b1" in out
    fam = pd.read_csv(tmp_path / "family.csv")
    assert len(fam) == 6
    for col in ("train_img_per_s", "train_seconds", "latency_ms_b1", "latency_ms_bN", "latency_batch"):
        assert fam[col].notna().all() and (fam[col] > 0).all(), col
    assert (fam["latency_batch"] == 4).all()
    assert (fam["train_img_per_s"] == fam["images_per_second"]).all()
    # one measurement per network: the two seeds of a member share it
    assert fam.groupby("phi")["latency_ms_b1"].nunique().eq(1).all()
    rec = json.loads((tmp_path / "members" / "phi2-seed1" / "latency.json").read_text())
    assert rec["protocol"] == {"batch": 4, "threads": 1, "runtime": "torch", "warmup": 5, "repeats": 20}
    assert rec["machine"]["threads"] == 1 and rec["machine"]["cpu_count"] >= 1 and "torch" in rec["machine"]
    assert rec["latency_ms_b1"] == fam[(fam.phi == 2) & (fam.seed == 1)]["latency_ms_b1"].iloc[0]

    # resumed on the same machine under the same protocol: read back, not measured again
    def refuse(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(timing, "measure", refuse)
    assert main([*FAMILY, "--out", str(tmp_path), "--resume", "--quiet"]) == 0
    again = pd.read_csv(tmp_path / "family.csv")
    assert again["latency_ms_b1"].tolist() == fam["latency_ms_b1"].tolist()
    capsys.readouterr()

    assert main(["curves", str(tmp_path), "--out", str(tmp_path / "curves"), "--metric", "val_accuracy"]) == 0
    out = capsys.readouterr().out
    assert "train_seconds" in out and "latency_ms_b1" in out
    for axis in ("train_seconds", "latency_ms_b1", "latency_ms_bN"):
        assert (tmp_path / "curves" / f"accuracy_vs_{axis}.png").stat().st_size > 5_000
    pts = pd.read_csv(tmp_path / "curves" / "curves.csv")
    assert pts["latency_ms_b1"].notna().all() and pts["train_seconds"].notna().all()


def test_a_family_trained_with_tta_keeps_both_test_accuracies(tmp_path, capsys) -> None:
    """train.tta (the fast recipe's default) reaches family.csv as its own column, never in place of
    the plain test accuracy."""
    args = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0",
            "--no-baselines", "--train", "--dataset", "digits",
            "--epochs", "1", "--data-fraction", "0.3", "--seeds", "1", "--set", "train.threads=1",
            "--set", "train.tta=true", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    fam = pd.read_csv(tmp_path / "family.csv")
    metrics = json.loads((tmp_path / "members" / "phi0-seed0" / "metrics.json").read_text())
    assert fam["test_accuracy_tta"].iloc[0] == metrics["test_accuracy_tta"]
    assert fam["test_accuracy"].iloc[0] == metrics["test_accuracy"]
