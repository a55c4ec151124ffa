"""CUDA only (``-m gpu``; skipped where no CUDA device exists): mixed precision and channels_last
in the trainer, the data-parallel path on two GPUs, a Ray trial on a shared GPU, and out of
memory. ``bench/gpu_check.sh`` runs these on a GPU machine; they have not run on the CPU-only
machine the project is developed on (docs/gpu.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from effnas.experiments.config.schema import JobConfig
from effnas.experiments.train.loop import train

pytestmark = pytest.mark.gpu

FAST: dict[str, Any] = {"model": "tiny", "dataset": "digits", "resolution": 32, "epochs": 3, "batch_size": 64,
                        "quiet": True, "device": "cuda"}


def conv_weights(run: Path) -> list[torch.Tensor]:
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model"]
    return [v for v in state.values() if v.ndim == 4]


def test_auto_precision_is_bf16_or_fp16_and_recorded(tmp_path: Path) -> None:
    m = train(JobConfig(**FAST, out_dir=str(tmp_path)))
    assert m["status"] == "completed" and m["device"].startswith("cuda")
    assert m["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert m["val_accuracy"] > 0.6 and m["peak_memory_mb"] > 0


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_precision_and_memory_format_train_to_accuracy(tmp_path: Path, precision: str, channels_last: bool) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    m = train(JobConfig(**FAST, precision=precision, channels_last=channels_last, out_dir=str(tmp_path)))
    assert m["status"] == "completed" and m["precision"] == precision
    assert m["val_accuracy"] > 0.6  # 10 classes: chance is 0.1
    ckpt = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    assert (ckpt["scaler"] is not None) == (precision == "fp16")  # fp16 needs the GradScaler, bf16 does not
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert all(w.is_contiguous(memory_format=fmt) for w in conv_weights(tmp_path) if w.shape[-1] > 1)


def test_out_of_memory_on_the_gpu_is_status_oom(tmp_path: Path) -> None:
    batch = 1024  # B0 at 600 px in fp32: hundreds of GB of activations, beyond any GPU
    m = train(JobConfig(model="efficientnet_b0", dataset="digits", resolution=600, epochs=1, batch_size=batch,
                        quiet=True, device="cuda", precision="fp32", out_dir=str(tmp_path)))
    assert m["status"] == "oom"
    assert m["error"].startswith(f"out of memory on cuda:0 at {batch} images per device step")
    assert "\n" not in m["error"] and "raise train.accumulate" in m["error"]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_nccl_equal_one_gpu_accumulating(tmp_path: Path) -> None:
    base = {**FAST, "epochs": 1, "dropout": 0.0, "drop_connect_rate": 0.0, "augment": "none", "precision": "fp32"}
    ddp = train(JobConfig(**base, devices=2, out_dir=str(tmp_path / "ddp")))
    acc = train(JobConfig(**base, accumulate=2, out_dir=str(tmp_path / "acc")))
    assert ddp["status"] == acc["status"] == "completed" and ddp["devices"] == 2
    for a, b in zip(conv_weights(tmp_path / "ddp"), conv_weights(tmp_path / "acc"), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # TF32 convolutions: looser than on CPU


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_sync_bn_on_two_gpus_equals_one_gpu_on_the_whole_batch(tmp_path: Path) -> None:
    """Without sync_bn each GPU normalises its half batch (= accumulate 2, the test above); with it,
    BatchNorm sees the whole global batch, as one GPU does: weights and running statistics match."""
    base = {**FAST, "epochs": 1, "dropout": 0.0, "drop_connect_rate": 0.0, "augment": "none", "precision": "fp32"}
    sync = train(JobConfig(**base, devices=2, sync_bn=True, out_dir=str(tmp_path / "sync")))
    one = train(JobConfig(**base, out_dir=str(tmp_path / "one")))
    assert sync["status"] == one["status"] == "completed" and sync["devices"] == 2
    states = [torch.load(tmp_path / d / "last.pt", map_location="cpu", weights_only=True)["model"]
              for d in ("sync", "one")]
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        if states[0][k].is_floating_point():
            torch.testing.assert_close(states[0][k], states[1][k], rtol=1e-3, atol=1e-4, msg=k)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_keep_mixed_precision_and_channels_last(tmp_path: Path) -> None:
    m = train(JobConfig(**FAST, devices=2, out_dir=str(tmp_path)))
    assert m["status"] == "completed" and m["devices"] == 2 and m["precision"] in ("bf16", "fp16")
    assert m["val_accuracy"] > 0.6
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(tmp_path) if w.shape[-1] > 1)


def test_two_ray_trials_share_one_gpu(tmp_path: Path) -> None:
    from effnas.experiments.cluster.ray_backend import run_configs
    from effnas.experiments.train.loop import train_fn

    configs = [{**FAST, "device": "auto", "epochs": 1, "seed": s, "out_dir": str(tmp_path / f"r{s}")} for s in (0, 1)]
    out = run_configs(train_fn, configs, workers=2, cpus_per_trial=1, gpus_per_trial=0.5)
    assert [r["status"] for r in out] == ["completed", "completed"]
    assert all(r["device"].startswith("cuda") for r in out)  # auto used the GPU Ray assigned
