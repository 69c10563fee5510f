"""ICNN convexity, softplus-reparametrised weights that learn, and Brenier maps that are λ-strongly monotone."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from identkit.neural import ICNN, BrenierMap, monotonicity_margin
from conftest import perturb_parameters

SETTINGS = settings(max_examples=15, deadline=None)


def _net(seed, dim, hidden, layers, lam=None, scramble=0.0, activation="leaky_relu", scaled=False):
    """A float64 ICNN or BrenierMap with seeded init, optionally with all raw parameters perturbed by N(0, scramble²)."""
    torch.manual_seed(seed)
    net = ICNN(dim, hidden, layers, activation) if lam is None else BrenierMap(dim, hidden, layers, lam,
                                                                              activation=activation, scaled=scaled)
    net = net.double()
    return perturb_parameters(net, scramble, seed + 1)


def _pairs(seed, n, dim, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    u = scale * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    # mix far pairs and very close pairs (the injectivity question is about near-coincident points)
    close = torch.rand(n, 1, generator=gen, dtype=torch.float64) < 0.5
    step = torch.where(close, 1e-3, scale) * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return u, u + step


# ------------------------------------------------------------------------------------------------------- ICNN
ACTS = st.sampled_from(["leaky_relu", "softplus", "celu"])


@SETTINGS
@given(seed=st.integers(0, 10_000), dim=st.integers(1, 5), hidden=st.integers(1, 16), layers=st.integers(1, 4),
       scramble=st.sampled_from([0.0, 1.0, 5.0]), activation=ACTS)
def test_icnn_is_convex_along_random_segments(seed, dim, hidden, layers, scramble, activation):
    # Convex for *every* parameter value: scrambled raw weights (even large) keep the midpoint inequality.
    psi = _net(seed, dim, hidden, layers, scramble=scramble, activation=activation)
    u, v = _pairs(seed, 256, dim)
    t = torch.rand(256, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        lhs = psi(t * u + (1 - t) * v)
        rhs = t[:, 0] * psi(u) + (1 - t[:, 0]) * psi(v)
        mid = psi(0.5 * (u + v)) - 0.5 * (psi(u) + psi(v))
    tol = 1e-9 * (1 + rhs.abs())
    assert torch.all(lhs <= rhs + tol)
    assert torch.all(mid <= tol)


def test_icnn_output_shape_and_bad_input():
    psi = ICNN(3, 8, 2)
    assert psi(torch.randn(5, 3)).shape == (5,)
    with pytest.raises(ValueError, match="u"):
        psi(torch.randn(5, 4))
    for kwargs, name in [({"dim": 0}, "dim"), ({"dim": 2, "hidden": 0}, "hidden"),
                         ({"dim": 2, "layers": 0}, "layers"), ({"dim": 2.5}, "dim")]:
        with pytest.raises(ValueError, match=name):
            ICNN(**kwargs)


def test_icnn_positive_weights_receive_gradient_and_move():
    # The reference code clamps at 0.01 from an init below it: zero gradient, weights never move. Not here.
    torch.manual_seed(0)
    psi = ICNN(3, 16, 3)
    before = [p.detach().clone() for p in psi.W_raw] + [psi.w_out_raw.detach().clone()]
    u = torch.randn(64, 3)
    target = (u**2).sum(1)  # fit a convex target
    opt = torch.optim.Adam(psi.parameters(), lr=1e-2)
    loss = (psi(u) - target).square().mean()
    opt.zero_grad()
    loss.backward()
    raws = list(psi.W_raw) + [psi.w_out_raw]
    for raw in raws:
        assert raw.grad is not None and raw.grad.abs().max() > 0
        assert torch.count_nonzero(raw.grad) > 0.9 * raw.numel()  # essentially every entry gets gradient
    opt.step()
    for raw, old in zip(raws, before):
        assert (raw.detach() - old).abs().max() > 1e-4
    # and a few more steps actually fit: the loss goes down
    for _ in range(100):
        loss2 = (psi(u) - target).square().mean()
        opt.zero_grad()
        loss2.backward()
        opt.step()
    assert loss2.item() < 0.5 * loss.item()


def test_icnn_weights_stay_positive_when_pushed_negative():
    # Minimising Σ W drives the raw parameters to −∞, but W = softplus(raw)/h never crosses 0.
    torch.manual_seed(1)
    psi = ICNN(2, 8, 3)
    opt = torch.optim.SGD(psi.parameters(), lr=50.0)
    for _ in range(50):
        loss = sum(w.sum() for w in psi.positive_weights())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert min(float(w.detach().min()) for w in psi.positive_weights()) >= 0.0
    assert min(float(raw.detach().min()) for raw in psi.W_raw) < -1.0  # they did move a lot
    u, v = _pairs(3, 200, 2)
    with torch.no_grad():
        assert torch.all(psi(0.5 * (u + v).float()) <= 0.5 * (psi(u.float()) + psi(v.float())) + 1e-5)


def test_deep_icnn_output_scale_does_not_explode():
    # softplus(raw)/hidden ≈ 1/hidden keeps each layer an average of the previous one: the scale of ψ and of ∇ψ
    # stays O(1) with depth (a naive W ~ U(0, 1) init grows by ~hidden/2 per layer: 10^7 after 6 layers here).
    u = torch.randn(256, 10)
    scales = []
    for layers in (1, 2, 4, 8):
        torch.manual_seed(0)
        g = BrenierMap(10, 64, layers, lam=0.1)
        with torch.no_grad():
            scales.append(float((g(u) - 0.1 * u).norm(dim=1).mean()))
    assert max(scales) < 10.0
    assert max(scales) / min(scales) < 20.0


def test_icnn_state_dict_round_trip():
    torch.manual_seed(2)
    psi = ICNN(4, 8, 3)
    sd = psi.state_dict()
    n_params = sum(1 for _ in psi.parameters())
    assert len(sd) == n_params and any(k.startswith("W_raw") for k in sd)
    torch.manual_seed(99)
    other = ICNN(4, 8, 3)
    u = torch.randn(10, 4)
    assert not torch.allclose(other(u), psi(u))
    other.load_state_dict(sd)
    assert torch.equal(other(u), psi(u))


# ------------------------------------------------------------------------------------------------ Brenier map
@SETTINGS
@given(seed=st.integers(0, 10_000), dim=st.integers(1, 6), hidden=st.integers(1, 16), layers=st.integers(1, 3),
       lam=st.floats(1e-3, 3.0), scramble=st.sampled_from([0.0, 2.0]), activation=ACTS, scaled=st.booleans())
def test_brenier_map_is_lambda_strongly_monotone_and_injective(seed, dim, hidden, layers, lam, scramble, activation,
                                                                scaled):
    # also with a learnable output scale e^a (scrambled too): e^a ψ is still convex, so the margin stays ≥ λ
    g = _net(seed, dim, hidden, layers, lam=lam, scramble=scramble, activation=activation, scaled=scaled)
    u, v = _pairs(seed, 300, dim)
    margin = monotonicity_margin(g, u, v)
    assert margin >= lam - 1e-7
    with torch.no_grad():
        dist_out = (g(u) - g(v)).norm(dim=1)
    dist_in = (u - v).norm(dim=1)
    # injectivity with a rate: distinct inputs have distinct images, ‖g(u) − g(v)‖ ≥ λ‖u − v‖
    assert torch.all(dist_out >= lam * dist_in * (1 - 1e-7))
    assert torch.all(dist_out > 0)


@SETTINGS
@given(seed=st.integers(0, 10_000), dim=st.integers(1, 5), layers=st.integers(1, 3), lam=st.floats(1e-3, 2.0))
def test_brenier_jacobian_is_symmetric_hessian_plus_lambda(seed, dim, layers, lam):
    g = _net(seed, dim, 12, layers, lam=lam, scramble=1.0)
    u0 = 1.5 * torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda x: g(x[None])[0], u0)
    hess = torch.autograd.functional.hessian(lambda x: g.potential(x[None])[0], u0)
    assert torch.allclose(jac, jac.T, atol=1e-10)
    assert torch.allclose(jac, hess + lam * torch.eye(dim, dtype=torch.float64), atol=1e-10)
    eig = torch.linalg.eigvalsh(jac)
    assert eig.min() >= lam - 1e-9
    assert torch.linalg.eigvalsh(hess).min() >= -1e-9  # ψ itself is convex


@pytest.mark.parametrize("activation", ["leaky_relu", "softplus", "celu"])
def test_calibrated_output_scale_sets_the_nonlinear_part(activation):
    # ∇(e^a ψ) = e^a ∇ψ: one evaluation sets ‖e^a ∇ψ(u)‖/‖λu‖ on the probes to the target exactly, and the map
    # is still the gradient of the strongly convex e^a ψ + λ‖u‖²/2 with margin ≥ λ
    torch.manual_seed(0)
    g = BrenierMap(20, 32, 2, lam=1.5, activation=activation, scaled=True).double()
    u = torch.randn(200, 20, dtype=torch.float64)
    before = g.nonlinearity_ratio(u)
    assert before < 0.05  # the ICNN's own initialisation: almost linear
    g.calibrate(u, 0.7)
    assert g.nonlinearity_ratio(u) == pytest.approx(0.7, rel=1e-9)
    assert g.scale().item() == pytest.approx(0.7 / before, rel=1e-9)
    uu = u.clone().requires_grad_(True)
    auto = torch.autograd.grad(g.psi(uu).sum(), uu)[0]
    assert torch.allclose(g(u), auto, atol=1e-10)
    v = u + 0.01 * torch.randn(200, 20, dtype=torch.float64)
    assert monotonicity_margin(g, u, v) >= 1.5 - 1e-9
    with pytest.raises(ValueError, match="scaled=True"):
        BrenierMap(3, 4, 1, lam=1.0).calibrate(torch.randn(5, 3), 1.0)
    with pytest.raises(ValueError, match="activation"):
        BrenierMap(3, 4, 1, lam=1.0, activation="relu")


def test_softplus_brenier_map_is_continuous_where_leaky_relu_jumps():
    # the leaky ReLU's kink makes ∇ψ jump across {W z_1 + A u + b = 0}; a softplus (C^∞) layer does not
    def max_jump(activation):
        torch.manual_seed(3)
        g = BrenierMap(1, 8, 2, lam=0.1, activation=activation).double()
        with torch.no_grad():
            g.potential.W_raw[0].mul_(0.0).add_(5.0)  # large positive weights: sharp, visible kinks
        t = torch.linspace(-3, 3, 20001, dtype=torch.float64)[:, None]
        return g(t).diff(dim=0).abs().max().item()

    assert max_jump("leaky_relu") > 50 * max_jump("softplus")


def test_brenier_map_is_gradient_of_its_potential():
    g = _net(4, 3, 8, 2, lam=0.3)
    u = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(g.psi(u).sum(), u)
    assert torch.allclose(g(u.detach()), grad, atol=1e-12)


def test_brenier_map_no_grad_leading_dims_and_double_backward():
    torch.manual_seed(5)
    g = BrenierMap(3, 16, 2, lam=0.2)
    u = torch.randn(2, 4, 3)
    out = g(u)
    assert out.shape == (2, 4, 3) and out.grad_fn is not None
    assert torch.allclose(out.reshape(8, 3), g(u.reshape(8, 3)))
    with torch.no_grad():
        out_ng = g(u)
    assert out_ng.grad_fn is None and torch.allclose(out_ng, out)
    # gradients of gradients: a loss on g(u) reaches every ICNN weight, and a few Adam steps fit a target map
    target_map = lambda x: torch.tanh(x) + 0.5 * x  # noqa: E731  (gradient of a strictly convex potential)
    x = 2 * torch.randn(256, 3)
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = (g(x) - target_map(x)).square().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        if len(losses) == 1:
            for name, p in g.named_parameters():
                # A constant in ψ has no effect on ∇ψ, and the biases of the piecewise-linear (leaky-ReLU) layers
                # only move kinks: ∂∇ψ/∂b_l = 0 almost everywhere for l ≥ 1. Every other weight gets gradient.
                if name != "potential.a_out.bias" and not (name.startswith("potential.A.") and name.endswith("bias")
                                                           and name != "potential.A.0.bias"):
                    assert p.grad is not None and p.grad.abs().max() > 0, name
        opt.step()
    assert losses[-1] < 0.3 * losses[0]
    # input gradients flow through g too (g1 inside a decoder receives z's graph)
    z = torch.randn(5, 3, requires_grad=True)
    g(z).sum().backward()
    assert z.grad is not None and z.grad.abs().max() > 0


def test_brenier_map_bad_arguments():
    for lam in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lam"):
            BrenierMap(2, 4, 1, lam=lam)
    g = BrenierMap(2, 4, 1, lam=0.1)
    with pytest.raises(ValueError, match="u"):
        g(torch.randn(3, 5))


def test_monotonicity_margin_values_and_errors():
    u = torch.randn(50, 3)
    v = torch.randn(50, 3)
    # linear maps: margin of diag(a) is min over pairs of a weighted average of a, within [min a, max a]
    a = torch.tensor([0.5, 1.0, 2.0])
    m = monotonicity_margin(lambda x: x * a, u, v)
    assert 0.5 <= m <= 2.0
    assert monotonicity_margin(lambda x: 3 * x, u, v) == pytest.approx(3.0, rel=1e-6)
    # a rotation by 90° is not monotone (margin 0), a reflection is anti-monotone (negative margin)
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    assert abs(monotonicity_margin(lambda x: x @ rot.T, u[:, :2], v[:, :2])) < 1e-6
    assert monotonicity_margin(lambda x: -x, u, v) == pytest.approx(-1.0, rel=1e-6)
    assert isinstance(monotonicity_margin(lambda x: x, np.ones((2, 2)), np.zeros((2, 2))), float)
    with pytest.raises(ValueError, match="u and v"):
        monotonicity_margin(lambda x: x, u, v[:10])
    with pytest.raises(ValueError, match="differ"):
        monotonicity_margin(lambda x: x, u, u.clone())
    bad = u.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="u"):
        monotonicity_margin(lambda x: x, bad, v)
