"""search_spaces/latency_table.py on a synthetic device whose op costs are known (an op costs its MACs per
input pixel, a network its ops plus a fixed 0.25 ms), and once on the real CPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import effnas.search_spaces as ss
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.latency_table import LatencyTable, Tail, ops, time_network, time_op
from effnas.search_spaces.timing import Protocol

OVERHEAD = 0.25


def cost(module: nn.Module, shape: tuple[int, ...]) -> float:
    """The synthetic op's ms: its parameters times its input's spatial size, in millions (a known function)."""
    return sum(p.numel() for p in module.parameters()) * shape[-1] * shape[-2] / 1e6


def device(module: nn.Module, shape: tuple[int, ...], protocol: Protocol) -> float:
    """Synthetic: a whole network costs the sum of its ops plus OVERHEAD; an op costs :func:`cost`."""
    if isinstance(module, ss.Network):
        net_ops = ops(module.spec, batch=shape[0])
        return sum(cost(op.module, op.shape) for op in net_ops) + OVERHEAD
    return cost(module, shape)


def specs() -> list[ss.NetworkSpec]:
    base = ss.get("tiny", num_classes=10)
    return [base, dataclasses.replace(base, resolution=24), dataclasses.replace(base, resolution=40),
            ss.scale(base, depth=1.6, width=1.3)]


def test_ops_cover_the_network_and_share_keys_only_for_the_same_computation() -> None:
    base = ss.get("tiny", num_classes=10)
    found = ops(base)
    assert found[0].kind == "Sequential" and found[-1].kind == "Tail"
    assert len(found) == 2 + sum(len(list(s.layers())) for s in base.stages)
    assert found[0].shape == (1, 3, base.resolution, base.resolution)
    net = ss.build(base).eval()  # the ops in order compute the network
    x = torch.randn(1, 3, base.resolution, base.resolution)
    with torch.no_grad():
        y = x
        for op in ops(base):
            assert tuple(y.shape) == op.shape
            y = op.module.eval()(y)
    assert y.shape == net(x).shape
    again = ops(base)
    assert [o.key for o in again] == [o.key for o in found]
    other = ops(dataclasses.replace(base, resolution=base.resolution * 2))
    assert not {o.key for o in other} & {o.key for o in found}  # other input shapes: other entries
    assert isinstance(found[-1].module, Tail)


def test_a_sum_of_known_op_costs_is_predicted_exactly(tmp_path: Path) -> None:
    table = LatencyTable.build(specs(), timer=device)
    assert table.a == pytest.approx(OVERHEAD) and table.b == pytest.approx(1.0)
    wider = ss.scale(ss.get("tiny", num_classes=10), depth=1.0, width=1.5, resolution=36)
    with pytest.raises(KeyError, match="the table has no"):
        table.predict(wider)
    before = len(table.entries)
    assert table.extend([wider], device) > 0 and len(table.entries) > before
    assert table.extend([wider], device) == 0  # each op is timed once
    truth = device(ss.build(wider), (1, 3, wider.resolution, wider.resolution), table.protocol)
    assert table.predict(wider) == pytest.approx(truth)
    loaded = LatencyTable.load(table.save(tmp_path / "t.json"))
    assert loaded.entries == table.entries and loaded.protocol == table.protocol
    assert loaded.predict(wider) == pytest.approx(truth)
    assert json.loads((tmp_path / "t.json").read_text())["fit"]["networks"] == 4


def test_bad_table_files_get_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no latency table at .*bench/latency_table.py"):
        LatencyTable.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="invalid JSON"):
        LatencyTable.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(UserError, match="not a latency table of format"):
        LatencyTable.load(tmp_path / "other.json")
    with pytest.raises(UserError, match="not onnxruntime"):
        LatencyTable(protocol=Protocol(batch=1, runtime="onnxruntime"))


def test_on_this_cpu_a_table_predicts_a_network_it_did_not_see() -> None:
    """Real timing, small networks, loose bound: the table is a sum of real op times, near the measured total."""
    protocol = Protocol(batch=1, threads=1, warmup=2, repeats=5)
    table = LatencyTable.build(specs()[:3], protocol=protocol)
    assert all(ms > 0 for ms in table.entries.values())
    other = dataclasses.replace(ss.get("tiny", num_classes=10), resolution=28)  # not one of the built three
    table.extend([other])
    measured = time_network(other, protocol, time_op)
    assert 0.3 * measured < table.predict(other) < 3 * measured


def test_a_table_from_another_machine_is_refused(tmp_path: Path) -> None:
    table = LatencyTable()
    table.check_machine()  # built here
    table.machine = {**table.machine, "processor": "another CPU"}
    loaded = LatencyTable.load(table.save(tmp_path / "t.json"))
    with pytest.raises(UserError, match="built with processor 'another CPU'.*build one here"):
        loaded.check_machine()
