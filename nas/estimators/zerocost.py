"""Zero-cost proxies: score an untrained network from one minibatch (pure torch).

The proxies of Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021; code:
SamsungLabs/zero-cost-nas, ``foresight/pruners/measures``) and NASWOT (Mellor et al., ICML 2021),
with the reference implementations' definitions. Each is computed at initialisation, on the model
in training mode (BatchNorm uses the batch's statistics), and aggregated over the weights of every
``Conv2d`` and ``Linear`` layer by a plain sum; higher means "predicted better":

=============  ==================================================================================
``synflow``    sum |theta * dR/dtheta|, R = sum of the outputs of the network with |theta| (float64,
               BatchNorm removed) on an all-ones input of one image (Tanaka et al. 2020)
``grad_norm``  sum over layers of the L2 norm of the cross-entropy gradient of the weights
``snip``       sum |theta * dL/dtheta| (Lee et al. 2019): the loss's sensitivity to each connection
``grasp``      sum -theta * (H g), g = dL/dtheta, H the Hessian (Wang et al. 2020; one extra
               Hessian-vector product)
``fisher``     sum over channels of 0.5 * mean over images of (sum over pixels act * dL/dact)^2, act
               the output of every conv / linear layer (Turner et al. 2020)
``jacob_cov``  -sum(log(v + k) + 1 / (v + k)), v the eigenvalues of the correlation matrix of the
               per-image input Jacobians of the summed outputs, k = 1e-5 (NASWOT v1)
``naswot``     log |det K|, K[i, j] = number of ReLUs on which images i and j agree (both active or
               both inactive), over every ReLU's input (NASWOT v2); SiLU, Hardswish and GELU
               units count by the sign of their input (:data:`GATES`)
=============  ==================================================================================

``jacob_cov`` of a network whose output ignores its input (an all-``none`` cell) is not finite
(a zero-variance Jacobian); it is returned as ``-inf`` (the lowest score), as are other proxies
that overflow. Every proxy works on a copy of the model: the model passed in is not changed.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 2))
>>> x, y = torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 0, 1])
>>> sorted(s := compute(net, x, y)) == sorted(PROXIES) and all(isinstance(v, float) for v in s.values())
True
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effnas.search_spaces.common.errors import UserError

#: The proxies, by name.
PROXIES = ("synflow", "jacob_cov", "naswot", "grad_norm", "snip", "grasp", "fisher")
#: Layers whose weights a proxy aggregates (the reference implementation's choice).
LAYERS = (nn.Conv2d, nn.Linear)


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, LAYERS)]


def _weights(model: nn.Module) -> list[Tensor]:
    """The weights of every conv / linear layer."""
    return [cast(Tensor, m.weight) for m in _layers(model)]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else float("-inf")


def _loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(model(x), y)


def _drop_bn(model: nn.Module) -> None:
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            _drop_bn(child)


def synflow(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Synaptic flow: the network with |weights| and no BatchNorm, on one all-ones image, in float64."""
    net = copy.deepcopy(model)
    _drop_bn(net)
    net = net.double().train()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    net(torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)).sum().backward()
    total = math.fsum(float((w.detach() * w.grad).abs().sum()) for w in _weights(net) if w.grad is not None)
    return _finite(total)


def gradient_proxies(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """``grad_norm``, ``snip`` and ``fisher`` from one cross-entropy forward and backward pass."""
    net = copy.deepcopy(model).train()
    fish: list[Tensor] = []

    def keep(act: Tensor) -> Callable[[Tensor], None]:
        def on_grad(grad: Tensor) -> None:
            g = act.detach() * grad
            g = g.sum(tuple(range(2, g.ndim))) if g.ndim > 2 else g
            fish.append(g.pow(2).mean(0).mul(0.5).sum())
        return on_grad

    def hook(_m: nn.Module, _inp: tuple[Tensor, ...], out: Tensor) -> None:
        if out.requires_grad:
            out.register_hook(keep(out))

    handles = [m.register_forward_hook(hook) for m in _layers(net)]
    try:
        net.zero_grad()
        _loss(net, x, y).backward()
    finally:
        for h in handles:
            h.remove()
    graded = [(w.detach(), w.grad) for w in _weights(net) if w.grad is not None]
    return {"grad_norm": _finite(math.fsum(float(g.norm()) for _, g in graded)),
            "snip": _finite(math.fsum(float((w * g).abs().sum()) for w, g in graded)),
            "fisher": _finite(float(sum(fish, torch.zeros((), device=x.device))))}


def grad_norm(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Sum over layers of the L2 norm of the loss gradient of the weights."""
    return gradient_proxies(model, x, y)["grad_norm"]


def snip(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Sum |theta * dL/dtheta|: the loss's sensitivity to each connection."""
    return gradient_proxies(model, x, y)["snip"]


def fisher(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Per channel 0.5 * E_images[(sum_pixels act * grad)^2] of every conv / linear output, summed."""
    return gradient_proxies(model, x, y)["fisher"]


def grasp(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """-theta * Hg with g the loss gradient (one gradient, then a Hessian-vector product)."""
    net = copy.deepcopy(model).train()
    weights = _weights(net)
    g = torch.autograd.grad(_loss(net, x, y), weights, allow_unused=True)
    grads = torch.autograd.grad(_loss(net, x, y), weights, create_graph=True, allow_unused=True)
    z = sum(((gw.detach() * gf).sum() for gw, gf in zip(g, grads, strict=True) if gw is not None and gf is not None),
            torch.zeros((), device=x.device))
    net.zero_grad()
    z.backward()
    return _finite(math.fsum(float((-w.detach() * w.grad).sum()) for w in weights if w.grad is not None))


#: Activations whose input sign is a unit's binary code for ``naswot``: ReLU as in the paper; for
#: SiLU, Hardswish and GELU (MBConv spaces) the sign is where the unit passes rather than
#: suppresses its input, the same on/off split.
GATES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU)


def jacobian_proxies(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """``jacob_cov`` (input Jacobians of the summed outputs) and ``naswot`` (ReLU patterns of the
    same forward pass)."""
    net = copy.deepcopy(model).train()
    n = len(x)
    k = torch.zeros((n, n), dtype=torch.float64, device=x.device)

    def hook(_m: nn.Module, inp: tuple[Tensor, ...], _out: Tensor) -> None:
        # agreements = c c^T + (1 - c)(1 - c)^T = 2 c c^T + F - r_i - r_j (r: active units per
        # image); float32 counts are exact below 2^24 units per layer, summed in float64.
        c = (inp[0].detach().reshape(n, -1) > 0).float()
        r = c.sum(1, dtype=torch.float64)
        k.add_(2 * (c @ c.t()).double() + c.shape[1] - r[:, None] - r[None, :])

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, GATES)]
    x = x.detach().clone().requires_grad_(True)
    try:
        out = net(x)
    finally:
        for h in handles:
            h.remove()
    out.backward(torch.ones_like(out))
    assert x.grad is not None
    sign, logdet = torch.linalg.slogdet(k)
    return {"jacob_cov": _jacob_score(x.grad.reshape(n, -1).double()),
            "naswot": _finite(float(logdet)) if float(sign) > 0 else float("-inf")}


def _jacob_score(jac: Tensor) -> float:
    if bool((jac.std(1) == 0).any()):
        return float("-inf")
    v = torch.linalg.eigvalsh(torch.corrcoef(jac))
    k = 1e-5
    return _finite(float(-(torch.log(v + k) + 1.0 / (v + k)).sum()))


def jacob_cov(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """NASWOT v1: how uncorrelated the per-image input Jacobians are."""
    return jacobian_proxies(model, x, y)["jacob_cov"]


def naswot(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """NASWOT v2: log-determinant of the Hamming-agreement kernel of the ReLU activation patterns."""
    return jacobian_proxies(model, x, y)["naswot"]


_FUNCTIONS: dict[str, Callable[[nn.Module, Tensor, Tensor], float]] = {
    "synflow": synflow, "jacob_cov": jacob_cov, "naswot": naswot, "grad_norm": grad_norm, "snip": snip,
    "grasp": grasp, "fisher": fisher,
}


def check_name(name: str) -> str:
    """``name`` if it is a proxy, else a UserError naming the choices."""
    if name not in _FUNCTIONS:
        raise UserError(f"unknown zero-cost proxy {name!r}: expected one of {', '.join(PROXIES)}")
    return name


def score(model: nn.Module, x: Tensor, y: Tensor, name: str) -> float:
    """Proxy ``name`` of ``model`` on the minibatch ``(x, y)`` (images, int64 labels)."""
    return _FUNCTIONS[check_name(name)](model, x, y)


#: Proxies computed by one shared pass: asking for one of a group computes the group.
GROUPS: dict[str, tuple[str, ...]] = {"gradient": ("grad_norm", "snip", "fisher"),
                                      "jacobian": ("jacob_cov", "naswot"), "synflow": ("synflow",),
                                      "grasp": ("grasp",)}
_GROUP_FN: dict[str, Callable[[nn.Module, Tensor, Tensor], dict[str, float]]] = {
    "gradient": gradient_proxies, "jacobian": jacobian_proxies,
    "synflow": lambda m, x, y: {"synflow": synflow(m, x, y)}, "grasp": lambda m, x, y: {"grasp": grasp(m, x, y)},
}


def compute(model: nn.Module, x: Tensor, y: Tensor, names: Iterable[str] = PROXIES,
            *, seconds: dict[str, float] | None = None) -> dict[str, float]:
    """Every proxy of ``names`` (default all) on the same model and minibatch, sharing passes
    (:data:`GROUPS`); ``seconds``, when given, receives each group's wall time."""
    wanted = [check_name(n) for n in names]
    out: dict[str, float] = {}
    for group, members in GROUPS.items():
        if any(n in wanted for n in members):
            t0 = time.perf_counter()
            out.update(_GROUP_FN[group](model, x, y))
            if seconds is not None:
                seconds[group] = time.perf_counter() - t0
    return {n: out[n] for n in wanted}


def quantile(value: float, reference: Iterable[float]) -> float:
    """Where ``value`` falls among ``reference`` scores, in (0, 1): ``(below + ties / 2 + 0.5) / (n + 1)``.

    The proxy estimator's trial ``score``: rank-normalised, so the reward ``score x (cost / T)^w``
    keeps a proxy's order at equal cost. Non-finite scores rank lowest.

    >>> quantile(5.0, [1.0, 2.0, 8.0]), quantile(float("-inf"), [1.0]), quantile(9.0, [1.0, 2.0, 8.0])
    (0.625, 0.25, 0.875)
    """
    ref = list(reference)
    below = sum(r < value for r in ref)
    ties = sum(r == value for r in ref)
    return (below + ties / 2 + 0.5) / (len(ref) + 1)


__all__ = ["GROUPS", "PROXIES", "check_name", "compute", "fisher", "grad_norm", "gradient_proxies", "grasp",
           "jacob_cov", "jacobian_proxies", "naswot", "quantile", "score", "snip", "synflow"]
