"""Latency lookup tables (Once-for-All's latency LUT): each (op, input shape) of a network is timed once on
the target machine and stored; a network's latency is then predicted without running it, as the sum of its
ops' times through a fitted line ``a + b * sum`` (the calls, allocations and cache effects that no single op
carries).

An **op** is one unit of :class:`~effnas.search_spaces.builder.Network`: the stem, each block (MBConv,
Fused-MBConv, ResNet's, ...) and the tail (head conv, global pooling and classifier). Its key is the op's
module structure (``str(module)``: every conv's channels, kernel, stride and groups, the BN, activation and
SE) with its shortcut and its input shape, so two networks share an entry exactly when they run the same
computation on the same tensor. Ops and whole networks are timed under one
:class:`~effnas.search_spaces.timing.Protocol` (eval, ``no_grad``, CPU, ``protocol.threads`` threads, the
median of ``repeats`` calls after ``warmup``), recorded in the table with the machine; a table is only
valid on the machine and protocol it was built with.

    table = LatencyTable.build(calibration_specs)   # times the specs' ops and the specs, fits a, b
    table.predict(spec)                              # ms; KeyError for an op the table has not timed
    table.extend([spec]); table.predict(spec)        # time the missing ops (never the network)
    table.save("latency.json"); LatencyTable.load("latency.json")

``docs/results/latency_table.md`` (``bench/latency_table.py``) measures the prediction error on this machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from effnas.search_spaces.builder import Network, build
from effnas.search_spaces.common.atomic import atomic_json
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.spec import NetworkSpec
from effnas.search_spaces.timing import Protocol, machine, median_time

FORMAT = "effnas-latency-table/1"

#: ``timer(module, input_shape, protocol) -> ms``: how an op or a network is timed (the default runs it).
Timer = Callable[[nn.Module, tuple[int, ...], Protocol], float]


class Tail(nn.Module):
    """The network after its last stage: head conv, global average pooling, dropout, classifier."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.head, self.dropout, self.classifier = net.head, net.dropout, net.classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.head(x).mean((2, 3))))


@dataclass(frozen=True)
class Op:
    """One timed unit of a network: its key, a readable kind, the module and its input shape."""

    key: str
    kind: str
    module: nn.Module
    shape: tuple[int, ...]


def _key(module: nn.Module, shape: tuple[int, ...]) -> str:
    text = f"{type(module).__name__}|identity={getattr(module, 'identity', None)}|{module}|{shape}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def ops(spec: NetworkSpec, *, batch: int = 1) -> list[Op]:
    """The ops of ``spec``'s network in order, with the input shape each sees at ``batch``."""
    net = build(spec).eval()
    units: list[nn.Module] = [net.stem, *(b for stage in net.stages for b in stage.children()), Tail(net)]
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [u.register_forward_pre_hook(lambda m, a: shapes.__setitem__(id(m), tuple(a[0].shape)))
             for u in units]
    try:
        with torch.no_grad():
            x = net.stem(torch.zeros(batch, 3, spec.resolution, spec.resolution))
            for stage in net.stages:
                x = stage(x)
            units[-1](x)
    finally:
        for h in hooks:
            h.remove()
    return [Op(_key(u, shapes[id(u)]), type(u).__name__, u, shapes[id(u)]) for u in units]


def time_op(module: nn.Module, shape: tuple[int, ...], protocol: Protocol) -> float:
    """Median ms of ``module`` (eval, ``no_grad``, CPU) on a random input of ``shape`` under ``protocol``."""
    module = module.to("cpu").eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
    before = torch.get_num_threads()
    torch.set_num_threads(protocol.threads)
    try:
        with torch.no_grad():
            return median_time(lambda: module(x), warmup=protocol.warmup, repeats=protocol.repeats).median_ms
    finally:
        torch.set_num_threads(before)


def time_network(spec: NetworkSpec, protocol: Protocol, timer: Timer = time_op) -> float:
    """The measured latency of ``spec`` (ms at ``protocol.batch``): what a table's prediction is checked against."""
    return timer(build(spec).eval(), (protocol.batch, 3, spec.resolution, spec.resolution), protocol)


@dataclass
class LatencyTable:
    """Op times (ms) by key, the line ``ms = a + b * sum`` fitted on whole networks, and how they were timed."""

    protocol: Protocol = field(default_factory=lambda: Protocol(batch=1))
    entries: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    a: float = 0.0
    b: float = 1.0
    fitted_on: int = 0
    machine: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol.runtime != "torch":
            raise UserError(f"a latency table times torch ops, not {self.protocol.runtime}: use runtime 'torch'")
        if not self.machine:
            self.machine = machine(self.protocol.threads)

    def check_machine(self) -> None:
        """A one-line error when this machine, its torch or the table's threads are not what the table was
        built with (its times would not be this machine's)."""
        here = machine(self.protocol.threads)
        for key in ("processor", "cpu_count", "torch"):
            if self.machine.get(key) != here.get(key):
                raise UserError(f"this latency table was built with {key} {self.machine.get(key)!r}, this machine has "
                                 f"{here.get(key)!r}: build one here (LatencyTable.build, or python "
                                 "bench/latency_table.py in the repository)")

    def missing(self, spec: NetworkSpec) -> list[Op]:
        return [op for op in ops(spec, batch=self.protocol.batch) if op.key not in self.entries]

    def extend(self, specs: Iterable[NetworkSpec], timer: Timer = time_op) -> int:
        """Time every op of ``specs`` the table lacks (once each); returns how many were added."""
        added = 0
        for spec in specs:
            for op in self.missing(spec):
                if op.key not in self.entries:
                    self.entries[op.key] = float(timer(op.module, op.shape, self.protocol))
                    self.kinds[op.key], self.shapes[op.key] = op.kind, list(op.shape)
                    added += 1
        return added

    def op_sum(self, spec: NetworkSpec) -> float:
        """The sum of ``spec``'s op times (ms); KeyError naming the first op the table lacks."""
        total = 0.0
        for op in ops(spec, batch=self.protocol.batch):
            if op.key not in self.entries:
                raise KeyError(f"{spec.name}: the table has no {op.kind} op of input {op.shape} "
                               "(LatencyTable.extend times it)")
            total += self.entries[op.key]
        return total

    def predict(self, spec: NetworkSpec) -> float:
        """Predicted latency of ``spec`` in ms: ``a + b * op_sum(spec)``."""
        return self.a + self.b * self.op_sum(spec)

    def fit(self, specs: Sequence[NetworkSpec], measured_ms: Sequence[float]) -> None:
        """Least-squares ``a, b`` of measured network latencies on their op sums (b = 1 and a the mean
        residual with fewer than three networks)."""
        if len(specs) != len(measured_ms) or not specs:
            raise UserError(f"fit needs one measured latency per network, got {len(specs)} networks and "
                            f"{len(measured_ms)} latencies")
        sums = np.array([self.op_sum(s) for s in specs])
        y = np.asarray(measured_ms, dtype=float)
        if len(specs) >= 3 and np.ptp(sums) > 0:
            self.b, self.a = (float(v) for v in np.polyfit(sums, y, 1))
        else:
            self.a, self.b = float(np.mean(y - sums)), 1.0
        self.fitted_on = len(specs)

    @classmethod
    def build(cls, specs: Sequence[NetworkSpec], *, protocol: Protocol | None = None,
              timer: Timer = time_op) -> LatencyTable:
        """Time the ops of ``specs`` and the networks themselves, and fit the line on them."""
        table = cls(protocol=protocol or Protocol(batch=1))
        table.extend(specs, timer)
        table.fit(specs, [time_network(s, table.protocol, timer) for s in specs])
        return table

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "protocol": self.protocol.to_dict(), "machine": self.machine,
                "fit": {"a_ms": self.a, "b": self.b, "networks": self.fitted_on},
                "ops": [{"key": k, "kind": self.kinds.get(k, ""), "shape": self.shapes.get(k, []), "ms": v}
                        for k, v in self.entries.items()]}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_json(path, self.to_dict(), indent=1)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"no latency table at {path}: build one on this machine with "
                             "LatencyTable.build(specs).save(path) (python bench/latency_table.py in the repository "
                             "builds the cifar and mnasnet spaces)") from None
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not a latency table (invalid JSON: {e.msg}): rebuild it") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{path} is not a latency table of format {FORMAT}: rebuild it")
        rows = data["ops"]
        return cls(protocol=Protocol(**data["protocol"]), entries={r["key"]: float(r["ms"]) for r in rows},
                   kinds={r["key"]: r["kind"] for r in rows}, shapes={r["key"]: list(r["shape"]) for r in rows},
                   a=float(data["fit"]["a_ms"]), b=float(data["fit"]["b"]), fitted_on=int(data["fit"]["networks"]),
                   machine=dict(data["machine"]))
