"""The timing protocol: warm-up calls discarded, the median of N timed calls, threads fixed and
restored, the protocol and the machine recorded with every measurement."""

from __future__ import annotations

import importlib.util
import itertools

import pytest
import torch

import effnas.search_spaces as ss
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.timing import Protocol, machine, measure, median_time, time_torch, time_train_step


def test_median_of_n_after_warmup_with_a_fake_clock() -> None:
    calls = []
    # each timed call reads the clock twice; call k (0-based) of the timed ones lasts durations[k] s
    durations = [0.005, 0.001, 0.009, 0.003, 0.004]
    ticks = iter(itertools.chain.from_iterable((0.0, d) for d in durations))
    t = median_time(lambda: calls.append(1), warmup=3, repeats=5, clock=lambda: next(ticks))
    assert len(calls) == 3 + 5  # warm-up calls run, untimed
    assert t.warmup == 3 and t.repeats == 5
    assert t.times_ms == pytest.approx([5.0, 1.0, 9.0, 3.0, 4.0])
    assert t.median_ms == pytest.approx(4.0)  # the median, not the mean (4.4) nor the minimum


def test_an_even_count_takes_the_middle_pair_and_one_slow_call_does_not_move_it() -> None:
    ticks = iter(itertools.chain.from_iterable((0.0, d) for d in (0.002, 0.004, 1.0, 0.003)))
    assert median_time(lambda: None, warmup=0, repeats=4, clock=lambda: next(ticks)).median_ms == pytest.approx(3.5)


@pytest.mark.parametrize("kw", [{"batch": 0}, {"threads": 0}, {"repeats": 0}, {"warmup": -1}, {"runtime": "tvm"}])
def test_a_bad_protocol_is_a_user_error(kw: dict) -> None:
    with pytest.raises(UserError):
        Protocol(**kw)


def test_torch_timing_fixes_the_threads_and_restores_them() -> None:
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((torch.get_num_threads(), torch.is_grad_enabled(), self.training))
            return x

    before = torch.get_num_threads()
    t = time_torch(Probe().train(), 8, 2, Protocol(threads=1, warmup=2, repeats=3))
    assert t.repeats == 3 and len(seen) == 5
    assert set(seen) == {(1, False, False)}  # one thread, no_grad, eval
    assert torch.get_num_threads() == before


def test_a_training_step_is_timed_under_the_protocol_and_costs_more_than_a_forward_pass() -> None:
    """EfficientNetV2's S: forward, loss, backward and an optimiser step, the median of ``repeats`` after
    ``warmup``, with the protocol's threads (restored after); a step does the forward pass's work and
    more, so it takes longer than the forward pass of the same batch."""
    spec = ss.get("tiny")
    p = Protocol(batch=32, threads=1, warmup=1, repeats=5)
    before = torch.get_num_threads()
    step = time_train_step(spec, p)
    assert step.repeats == 5 and step.warmup == 1 and torch.get_num_threads() == before
    forward = time_torch(ss.build(spec), spec.resolution, 32, p)
    assert step.median_ms > forward.median_ms, (step.times_ms, forward.times_ms)


def test_a_measurement_records_its_protocol_and_machine() -> None:
    p = Protocol(batch=4, warmup=1, repeats=3)
    r = measure(ss.get("tiny"), p)
    assert r["latency_batch"] == 4 and r["protocol"] == {"batch": 4, "threads": 1, "runtime": "torch", "warmup": 1,
                                                         "repeats": 3}
    assert 0 < r["latency_ms_b1"] and 0 < r["latency_ms_bN"]
    assert "ort_latency_ms_b1" not in r
    m = r["machine"]
    assert m == machine(1) and m["threads"] == 1 and m["torch"] == torch.__version__
    assert isinstance(m["cpu_count"], int) and m["processor"]


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_onnxruntime_is_timed_beside_torch_when_asked() -> None:
    r = measure(ss.get("tiny"), Protocol(batch=2, runtime="onnxruntime", warmup=1, repeats=2))
    assert r["ort_latency_ms_b1"] > 0 and r["ort_latency_ms_bN"] > 0 and r["latency_ms_b1"] > 0
    assert "onnxruntime" in r["machine"]


def test_backbones_are_timed_like_the_family() -> None:
    """The backbones stage times its trained networks under the family's protocol (family.latency_*)."""
    from effnas.experiments.config.schema import load_config
    from effnas.experiments.pipeline.plan import backbone_plan
    from effnas.scaling import Coefficients

    cfg = load_config(None, overrides=["family.latency_batch=4", "family.latency_threads=1"])
    sp = backbone_plan(cfg, "resnet18", Coefficients(1.2, 1.1, 1.15))
    assert sp.timing is not None and sp.timing["batch"] == 4 and sp.timing["threads"] == 1
