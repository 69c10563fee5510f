"""FullRankLinear: singular values ≥ min_singular for every parameter value, trained, registered, saved."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from identkit.neural import FullRankLinear
from identkit.neural.linear import orthonormal_columns


def _svals(layer):
    with torch.no_grad():
        return torch.linalg.svdvals(layer.weight.double())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_in=st.integers(1, 6), extra=st.integers(0, 10),
       min_singular=st.floats(1e-3, 2.0), scale=st.sampled_from([0.0, 1.0, 10.0, 1e3]),
       mode=st.sampled_from(["random", "rank_one", "zeros", "negative_s"]))
def test_singular_values_bounded_after_adversarial_perturbations(seed, n_in, extra, min_singular, scale, mode):
    layer = FullRankLinear(n_in, n_in + extra, min_singular=min_singular).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if mode == "random":  # arbitrary raw values
            for p in layer.parameters():
                p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        elif mode == "rank_one":  # raw factors of rank one: a naive W = raw would be singular
            for p in (layer.u_raw, layer.v_raw):
                a = torch.randn(p.shape[0], 1, generator=gen, dtype=p.dtype)
                p.copy_(scale * a.expand_as(p))
        elif mode == "zeros":
            for p in layer.parameters():
                p.zero_()
        else:  # singular-value parameters pushed far negative
            layer.s_raw.fill_(-1e3 - scale)
    s = _svals(layer)
    assert s.shape == (n_in,)
    assert s.min() >= min_singular * (1 - 1e-6)
    assert torch.allclose(torch.sort(s).values, torch.sort(layer.singular_values().detach()).values,
                          rtol=1e-6, atol=1e-9 * (1 + float(s.max())))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), k=st.integers(1, 12))
def test_orthonormal_columns_for_any_input(seed, n, k):
    n = max(n, k)
    raw = torch.randn(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    raw[:, 0] = 0.0  # a zero column: rank deficient input
    q = orthonormal_columns(raw)
    assert torch.allclose(q.T @ q, torch.eye(k, dtype=torch.float64), atol=1e-12)


def test_training_keeps_full_rank_and_moves_every_parameter():
    # A loss that rewards shrinking β towards rank 1 cannot push a singular value below min_singular.
    torch.manual_seed(0)
    layer = FullRankLinear(4, 12, min_singular=0.25)
    before = {n: p.detach().clone() for n, p in layer.named_parameters()}
    x = torch.randn(128, 4)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    for step in range(150):
        y = layer(x)
        loss = y[:, 1:].square().mean()  # wants every output in coordinate 0 only: rank one
        opt.zero_grad()
        loss.backward()
        if step == 0:
            for name, p in layer.named_parameters():
                assert p.grad is not None and p.grad.abs().max() > 0, name
        opt.step()
        assert _svals(layer).min() >= 0.25 * (1 - 1e-5)
    for name, p in layer.named_parameters():
        assert (p.detach() - before[name]).abs().max() > 1e-3, name
    s = np.sort(_svals(layer).numpy())
    # the loss pushed three of the four singular values (initially ≈ 1) down towards the bound, not through it
    assert s[2] < 0.35


def test_forward_is_x_times_weight_with_leading_dims_and_bias():
    torch.manual_seed(1)
    layer = FullRankLinear(3, 5)
    x = torch.randn(2, 7, 3)
    assert layer.weight.shape == (3, 5)
    assert torch.allclose(layer(x), x @ layer.weight)
    biased = FullRankLinear(3, 5, bias=True)
    with torch.no_grad():
        biased.bias.fill_(1.5)
    assert torch.allclose(biased(x), x @ biased.weight + 1.5)
    # injective with rate min(s): ‖xβ − x'β‖ ≥ s_min ‖x − x'‖
    a, b = torch.randn(100, 3), torch.randn(100, 3)
    lhs = (layer(a) - layer(b)).norm(dim=1)
    assert torch.all(lhs >= layer.singular_values().min() * (a - b).norm(dim=1) * (1 - 1e-5))


def test_state_dict_round_trip():
    torch.manual_seed(2)
    layer = FullRankLinear(3, 6, min_singular=0.2, bias=True)
    sd = layer.state_dict()
    assert set(sd) == {"u_raw", "v_raw", "s_raw", "bias"}
    torch.manual_seed(3)
    other = FullRankLinear(3, 6, min_singular=0.2, bias=True)
    assert not torch.allclose(other.weight, layer.weight)
    other.load_state_dict(sd)
    assert torch.equal(other.weight, layer.weight)
    x = torch.randn(4, 3)
    assert torch.equal(other(x), layer(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="out_features"):
        FullRankLinear(5, 3)
    with pytest.raises(ValueError, match="min_singular"):
        FullRankLinear(2, 3, min_singular=0.0)
    with pytest.raises(ValueError, match="min_singular"):
        FullRankLinear(2, 3, min_singular=float("nan"))
    with pytest.raises(ValueError, match="in_features"):
        FullRankLinear(0, 3)
    with pytest.raises(ValueError, match="x"):
        FullRankLinear(2, 3)(torch.randn(4, 3))
