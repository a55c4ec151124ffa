"""NAS-Bench-201 cells as networks (against the table's parameter counts) and the zero-cost proxies."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from effnas.nas.benchmarks import get_benchmark
from effnas.nas.benchmarks.nasbench201 import OPS, PARAMS, parse_arch
from effnas.nas.benchmarks.nb201_net import CellNetwork, build_cell_network
from effnas.nas.estimators import zerocost

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _net(ops: dict[str, str], seed: int = 0) -> nn.Module:
    """The NAS-Bench-201 skeleton, narrowed (8 channels, 1 cell per stage) to keep the tests fast."""
    torch.manual_seed(seed)
    return CellNetwork(ops, channels=8, cells=1)


def _uniform(op: str) -> dict[str, str]:
    return dict.fromkeys(PARAMS, op)


def test_cell_networks_have_the_tables_parameter_counts() -> None:
    table = get_benchmark("nasbench201:cifar10")
    for op, expected in (("none", 73_306), ("nor_conv_3x3", 1_531_546)):
        assert round(table.record(_uniform(op)).params_m * 1e6) == expected
        assert sum(p.numel() for p in build_cell_network(_uniform(op)).parameters()) == expected
    cells = random.Random(1).sample(list(table.keys()), 40)
    exact = sum(sum(p.numel() for p in build_cell_network(c).parameters()) == round(table.record(c).params_m * 1e6)
                for c in cells)
    assert exact >= 38  # 98.7 % of 400 random cells match exactly (docs/zerocost.md: a few table rows do not)


def test_a_cell_network_runs_and_rejects_an_incomplete_cell() -> None:
    net = build_cell_network(parse_arch(BEST), num_classes=7)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="edge_3_2"):
        build_cell_network({p: "none" for p in PARAMS[:-1]})
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 operation 'conv'"):
        build_cell_network({**_uniform("none"), "edge_1_0": "conv"})


def test_every_proxy_is_finite_and_deterministic_on_real_images(cifar_batch) -> None:
    x, y = cifar_batch
    a = zerocost.compute(_net(parse_arch(BEST)), x, y)
    b = zerocost.compute(_net(parse_arch(BEST)), x, y)
    assert set(a) == set(zerocost.PROXIES) and a == b
    assert all(math.isfinite(v) for v in a.values()), a
    assert a["synflow"] > 0 and a["grad_norm"] > 0 and a["snip"] > 0 and a["fisher"] > 0
    assert zerocost.score(_net(parse_arch(BEST)), x, y, "naswot") == a["naswot"]  # one proxy alone = in a group


def test_the_model_passed_in_is_left_unchanged(cifar_batch) -> None:
    x, y = cifar_batch
    net = _net(parse_arch(BEST))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    zerocost.compute(net, x, y)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_an_all_none_cell_scores_lowest(cifar_batch) -> None:
    """A cell of zeros passes no signal: synflow, grad_norm, snip and fisher all rank it last, and
    jacob_cov / naswot see an output that ignores the input (-inf, the lowest score)."""
    x, y = cifar_batch
    names = ("synflow", "grad_norm", "snip", "fisher", "jacob_cov", "naswot")
    none = zerocost.compute(_net(_uniform("none")), x, y, names)
    for other in (_uniform("nor_conv_3x3"), _uniform("skip_connect"), parse_arch(BEST)):
        s = zerocost.compute(_net(other), x, y, names)
        for n in names:
            assert none[n] < s[n], (n, none[n], s[n])
    assert none["jacob_cov"] == float("-inf")


def test_synflow_grows_with_parameters_on_a_trivial_case(cifar_batch) -> None:
    """More 3x3 convolutions in the same cell: more paths, larger synaptic flow."""
    x, y = cifar_batch
    one = {**_uniform("skip_connect"), "edge_3_2": "nor_conv_3x3"}
    two = {**one, "edge_3_1": "nor_conv_3x3"}
    assert zerocost.synflow(_net(one), x, y) < zerocost.synflow(_net(two), x, y) < zerocost.synflow(
        _net(_uniform("nor_conv_3x3")), x, y)


def test_naswot_kernel_matches_its_definition() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(128, 3))
    x = torch.randn(6, 3, 8, 8)
    k, h = torch.zeros(6, 6, dtype=torch.float64), x
    for m in net:
        if isinstance(m, nn.ReLU):
            c = (h.reshape(6, -1) > 0).double()
            k += c @ c.t() + (1 - c) @ (1 - c).t()
        h = m(h)
    assert zerocost.naswot(net, x, torch.zeros(6, dtype=torch.long)) == pytest.approx(float(torch.linalg.slogdet(k)[1]))


def test_names_and_quantiles() -> None:
    with pytest.raises(ValueError, match="unknown zero-cost proxy 'synflo': expected one of synflow"):
        zerocost.check_name("synflo")
    ref = [1.0, 2.0, 3.0]
    qs = [zerocost.quantile(v, ref) for v in (float("-inf"), 1.5, 2.0, 10.0)]
    assert qs == sorted(qs) and all(0 < q < 1 for q in qs)


def test_ops_are_the_benchmarks() -> None:
    assert set(OPS) == {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}


def test_naswot_reads_the_on_off_pattern_of_silu_units_too() -> None:
    import torch
    from torch import nn

    from effnas.nas.estimators import zerocost

    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))

    def net(act: type[nn.Module]) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 16, 3), act(), nn.Flatten(), nn.Linear(16 * 36, 2))

    relu, silu = zerocost.score(net(nn.ReLU), x, y, "naswot"), zerocost.score(net(nn.SiLU), x, y, "naswot")
    assert relu == silu, "same weights, same pre-activation signs"
    assert zerocost.score(net(nn.Tanh), x, y, "naswot") == float("-inf")  # no gating units: no pattern
