"""The weight-sharing supernet: every candidate is an exact slice of it (effnas.nas.estimators.supernet)."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from effnas.nas.estimators.supernet import (
    Supernet,
    largest_params,
    random_params,
    recalibrate_bn,
    slice_tensor,
    smallest_params,
)
from effnas.nas.space import SearchSpace, get_space


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    torch.manual_seed(0)
    return Supernet(get_space("cifar"))


def _specs(net: Supernet, n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [net.spec(random_params(net.space, rng)) for _ in range(n)]


def test_every_inherited_tensor_is_the_supernets_slice(supernet: Supernet) -> None:
    own = {**dict(supernet.net.named_parameters()), **dict(supernet.net.named_buffers())}
    for spec in [*_specs(supernet, 4), supernet.spec(smallest_params(supernet.space))]:
        model = supernet.extract(spec)
        state = model.state_dict()
        assert state, spec
        for name, t in state.items():
            full = own[name]
            if t.ndim == 4 and t.shape[-1] < full.shape[-1]:  # a smaller kernel: the centre of the largest
                o = (full.shape[-1] - t.shape[-1]) // 2
                expect = full[:t.shape[0], :t.shape[1], o:o + t.shape[2], o:o + t.shape[3]]
            else:
                expect = full[tuple(slice(0, s) for s in t.shape)]
            assert torch.equal(t, expect), name
    # a copy: training the extracted network leaves the supernet as it was
    model = supernet.extract(supernet.largest)
    before = supernet.net.stem[0].weight.clone()
    with torch.no_grad():
        model.stem[0].weight.add_(1.0)
    assert torch.equal(supernet.net.stem[0].weight, before)


def test_the_extracted_network_computes_what_the_supernet_path_computes(supernet: Supernet) -> None:
    x = torch.randn(4, 3, 32, 32)
    supernet.eval()
    for spec in _specs(supernet, 3, seed=1):
        with torch.no_grad():
            a = supernet(x, spec)
            b = supernet.extract(spec).eval()(x)
        assert torch.allclose(a, b, atol=1e-5), spec.name
    # different candidates are different functions of the same weights
    s1, s2 = _specs(supernet, 2, seed=2)
    with torch.no_grad():
        assert not torch.allclose(supernet(x, s1), supernet(x, s2))


def test_a_step_on_one_candidate_updates_only_its_slice() -> None:
    torch.manual_seed(0)
    net = Supernet(get_space("cifar"))
    spec = net.spec(smallest_params(net.space))
    net.train()
    net(torch.randn(4, 3, 32, 32), spec).sum().backward()
    w = net.net.stages[0][0].dw[0].weight  # the first depthwise conv: largest 5x5 on 16 x e6 channels
    sub = net.extract(spec).stages[0][0].dw[0].weight  # smallest: 3x3 on 16 channels (dsconv)
    assert w.grad is not None and sub.shape[0] < w.shape[0] and sub.shape[-1] < w.shape[-1]
    c, k, o = sub.shape[0], sub.shape[-1], (w.shape[-1] - sub.shape[-1]) // 2
    inside = w.grad[:c, :, o:o + k, o:o + k]
    assert inside.abs().sum() > 0
    outside = w.grad.clone()
    outside[:c, :, o:o + k, o:o + k] = 0
    assert outside.abs().sum() == 0
    # the largest candidate's extra stage-4 block got no gradient either: depth is a prefix
    deep = [p for n, p in net.net.named_parameters() if n.startswith("stages.4.1.")]
    assert deep and all(p.grad is None for p in deep)


def test_batchnorm_recalibration_changes_only_running_statistics() -> None:
    torch.manual_seed(0)
    net = Supernet(get_space("cifar"))
    model = net.extract(_specs(net, 1, seed=3)[0])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.03
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    batches = [torch.randn(8, 3, 32, 32) * 2 + 1 for _ in range(3)]
    assert recalibrate_bn(model, batches) == 24
    assert not model.training
    for n, p in model.named_parameters():
        assert torch.equal(p, params[n]), n
    changed = [n for n, b in model.named_buffers() if not torch.equal(b, buffers[n])]
    assert changed and all(n.endswith(("running_mean", "running_var", "num_batches_tracked")) for n in changed)
    # the stem's statistics are the plain average over the batches of its convolution's output
    conv, bn = model.stem[0], model.stem[1]
    with torch.no_grad():
        means = torch.stack([conv(b).mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    assert all(m.momentum == 0.03 for m in model.modules() if isinstance(m, nn.BatchNorm2d))  # restored
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_bn(model, [])


def test_the_supernet_is_the_largest_candidate_and_round_trips(supernet: Supernet) -> None:
    space = supernet.space
    big = largest_params(space)
    assert big["b0_conv_op"] == "mbconv_e6" and big["b0_kernel"] == 5 and big["b0_filters"] == 0.75
    assert supernet.largest == supernet.spec(big, name=supernet.largest.name)
    again = Supernet.from_checkpoint(supernet.to_checkpoint())
    spec = _specs(supernet, 1, seed=4)[0]
    for (n, a), b in zip(supernet.extract(spec).state_dict().items(), again.extract(spec).state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), n


def test_spaces_that_cannot_share_weights_are_one_line_errors() -> None:
    regular = SearchSpace("r", ("r1_k3_s11_e1_i16_o16",), {"conv_op": ("conv", "dsconv")}, stem_channels=16,
                          resolution=32, num_classes=10)
    with pytest.raises(ValueError, match="'conv'.*drop it from the space"):
        Supernet(regular)
    fused = SearchSpace("f", ("r1_k3_s11_e4_i16_o16",), {"conv_type": ("mbconv", "fused_mbconv")}, stem_channels=16,
                        resolution=32, num_classes=10)
    with pytest.raises(ValueError, match="conv_type choice 'fused_mbconv'.*drop it from the space"):
        Supernet(fused)
    with pytest.raises(ValueError, match="block 0 of space 'efficientnetv2_tiny' is 'fused_mbconv'"):
        Supernet(get_space("efficientnetv2_tiny"))
    with pytest.raises(ValueError, match=r"\(3, 3\) is not a slice"):
        slice_tensor(torch.zeros(2, 2), (3, 3), "w")


def test_a_training_step_updates_the_batchnorm_statistics_of_its_slice_only() -> None:
    torch.manual_seed(0)
    net = Supernet(get_space("cifar"))
    spec = net.spec(smallest_params(net.space))
    bn = net.net.stages[0][0].dw[1]  # BatchNorm of the first depthwise conv (largest: 96 channels)
    before = bn.running_mean.clone()
    net.train()
    net(torch.randn(4, 3, 32, 32) + 1, spec)
    c = net.extract(spec).stages[0][0].dw[1].num_features  # the smallest candidate's 16 channels
    assert c < bn.num_features
    assert not torch.equal(bn.running_mean[:c], before[:c]), "the statistics land in the supernet's buffers"
    assert torch.equal(bn.running_mean[c:], before[c:])
