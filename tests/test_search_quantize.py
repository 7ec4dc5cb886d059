"""Quantizer levels and codes, STE gradients, surrogate gradients (search/quantize.py, search/model.py)."""

import numpy as np
import pytest
import torch

from spikehq.golden import codes
from spikehq.search import quantize
from spikehq.search.quantize import (binary_membrane, ceil_ste, exact_round_ste, floor_ste, gumbel_softmax_sample,
                                     spike_fn, spike_fn_sgp, ternary_membrane)

CASES = [("uniform", 2), ("uniform", 4), ("pot", 2), ("pot", 4)]


@pytest.mark.parametrize("scheme,bits", CASES)
def test_levels_and_code_round_trip(scheme, bits):
    lv = codes.levels(scheme, bits)
    expected = {("uniform", 2): [-2, -1, 0, 1], ("uniform", 4): list(range(-8, 8)), ("pot", 2): [-1, 0, 1],
                ("pot", 4): sorted({0} | {s * 2 ** e for s in (-1, 1) for e in range(7)})}[(scheme, bits)]
    assert lv.tolist() == expected
    assert codes.decode(scheme, bits, codes.encode(scheme, bits, lv)).tolist() == lv.tolist()


@pytest.mark.parametrize("scheme,bits", CASES)
def test_to_int_lands_on_levels_and_matches_fake_quant(scheme, bits):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(64, 32, generator=g) * 0.2
    s = quantize.init_scale(w, scheme, bits)
    v = quantize.to_int(w, scheme, bits, s)
    assert set(v.unique().tolist()) <= set(codes.levels(scheme, bits).tolist())
    assert len(v.unique()) >= min(3, len(codes.levels(scheme, bits)))
    fq = quantize.fake_quant(w, scheme, bits, s)
    assert torch.equal(fq, v.float() * s)
    c = quantize.to_codes(w, scheme, bits, s)
    assert torch.equal(quantize.from_codes(c, scheme, bits, s), fq)
    if scheme == "pot":
        assert np.log2(s) == round(np.log2(s))          # power-of-two scale


def test_uniform_rounding_and_clipping():
    w = torch.tensor([-10.0, -2.5, -0.5, 0.49, 0.5, 1.5, 7.4, 9.0])
    assert quantize.to_int(w, "uniform", 4, 1.0).tolist() == [-8, -2, 0, 0, 0, 2, 7, 7]
    assert quantize.to_int(w, "uniform", 2, 1.0).tolist() == [-2, -2, 0, 0, 0, 1, 1, 1]


def test_pot_rounding():
    w = torch.tensor([0.49, 0.5, 0.74, 0.75, 1.49, 1.5, 2.9, 3.0, -5.0, 100.0, -0.1])
    # nearest level of {0, ±1, ±2, …, ±64}, ties up; clamped to 2^6
    assert quantize.to_int(w, "pot", 4, 1.0).tolist() == [0, 1, 1, 1, 1, 2, 2, 4, -4, 64, 0]
    assert quantize.to_int(w, "pot", 2, 1.0).tolist() == [0, 1, 1, 1, 1, 1, 1, 1, -1, 1, 0]


def test_pot_scale_minimizes_squared_error_over_powers_of_two():
    g = torch.Generator().manual_seed(11)
    w = torch.randn(4096, generator=g) * 0.05
    w[0] = 0.5                                         # one outlier: max|w| ≈ 10 σ
    for bits in (2, 4):
        s = quantize.pot_scale(w, bits)
        assert np.log2(s) == round(np.log2(s))
        err = quantize.quantization_error(w, "pot", bits, s)[0]
        for k in range(-20, 5):                        # no power of two does better
            assert err <= quantize.quantization_error(w, "pot", bits, 2.0 ** k)[0] + 1e-12
    # the old choice (α = the power of two nearest max|w|) zeroes almost every weight at 2 bits
    old = 2.0 ** round(np.log2(float(w.abs().max())))
    assert quantize.quantization_error(w, "pot", 2, old)[1] < 0.01
    assert quantize.quantization_error(w, "pot", 2, quantize.pot_scale(w, 2))[1] > 0.3


def test_synthetic_error_table_bounds():
    """PoT-2/4 with the least-squared-error power-of-two scale on Gaussian and Laplace weights:
    a sensible share of non-zero weights and an error near the uniform quantizer's."""
    rows = {(r["distribution"], r["candidate"]): r for r in quantize.synthetic_error_table(n=16384)}
    for dist in ("gaussian", "laplace"):
        p2, p4, u2, u4 = (rows[(dist, c)] for c in ("pot2", "pot4", "uni2", "uni4"))
        print(dist, {c: (round(r["relative_error"], 4), round(r["nonzero"], 3))
                     for c, r in zip(("pot2", "pot4", "uni2", "uni4"), (p2, p4, u2, u4))})
        assert 0.3 <= p2["nonzero"] <= 0.75 and p4["nonzero"] >= 0.9
        assert p2["relative_error"] < 0.3 and p4["relative_error"] < 0.05
        assert p2["relative_error"] < 1.5 * u2["relative_error"]     # 3 levels vs 4
        assert u4["relative_error"] < p4["relative_error"] < 4 * u4["relative_error"]


@pytest.mark.parametrize("scheme,bits", CASES)
def test_ste_gradient_identity_inside_zero_outside(scheme, bits):
    top = 2 ** (bits - 1) - 1 if scheme == "uniform" else 2 ** codes.pot_max_exponent(bits)
    w = torch.tensor([0.3, -0.6, top - 0.2, top + 3.0, -(top + 5.0)], requires_grad=True)
    quantize.fake_quant(w, scheme, bits, 1.0).sum().backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_lsq_scale_receives_gradient():
    w = torch.randn(100, generator=torch.Generator().manual_seed(0))
    s = torch.tensor(0.3, requires_grad=True)
    quantize.fake_quant(w, "uniform", 4, s).pow(2).sum().backward()
    assert s.grad is not None and s.grad != 0


def test_round_helpers_exact_forward_identity_backward():
    x = torch.tensor([-1.7, -0.3, -1e-7, 0.0, 0.4999, 0.5, 2.5, 3.9999], requires_grad=True)
    for fn, ref in ((floor_ste, torch.floor), (ceil_ste, torch.ceil), (exact_round_ste, torch.round)):
        y = fn(x)
        assert torch.equal(y, ref(x.detach()))
        (g,) = torch.autograd.grad(y.sum(), x)
        assert torch.equal(g, torch.ones_like(x))


def test_spike_surrogate_triangle():
    u = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0], requires_grad=True)
    s = spike_fn(u, torch.tensor(1.0))
    assert s.tolist() == [0, 0, 1, 1, 1, 1]
    s.sum().backward()
    assert torch.allclose(u.grad, torch.tensor([0.0, 0.5, 1.0, 0.5, 0.0, 0.0]))


def test_ternary_membrane_forward_and_stacked_sigmoid_gradient():
    th = torch.tensor(4.0)
    h = torch.tensor([-3.0, -2.0, -1.0, 0.0, 1.9, 2.0, 7.0, -9.0], requires_grad=True)
    r = ternary_membrane(h, th)
    # round half up of h/θ clipped: -2 = -θ/2 → 0, 2 = θ/2 → +1
    assert (r / 4).tolist() == [-1, 0, 0, 0, 0, 1, 1, -1]
    r.sum().backward()
    g = h.grad
    # bumps peak at the boundaries ±θ/2 (k/4 = 1 for smoothness 4), small far away
    assert g[5] > g[3] and g[1] > g[3] and g[6] < g[5]
    sig = torch.sigmoid(torch.tensor(4.0))
    assert torch.isclose(g[5], 1 + 4 * sig * (1 - sig))          # own bump k/4 = 1 + the other's tail


def test_gumbel_hard_sample_is_one_hot_with_soft_gradient():
    logits = torch.zeros(5, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    y = gumbel_softmax_sample(logits, 1.0, hard=True, generator=gen)
    assert sorted(y.detach().tolist()) == [0, 0, 0, 0, 1]
    (y * torch.arange(5.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    soft = gumbel_softmax_sample(logits.detach(), 1.0, hard=False, generator=gen)
    assert torch.isclose(soft.sum(), torch.tensor(1.0)) and (soft > 0).all()


def test_spike_sgp_separate_gradient_path():
    """SpQuant eq. 24–27: ∂S/∂u is the triangle; ∂S/∂θ = −triangle·σ((u−θ)/θ) for fired neurons
    only, summed over the neurons sharing the layer's threshold."""
    u = torch.tensor([0.5, 0.9, 1.0, 1.4, 2.5], requires_grad=True)
    th = torch.tensor(1.0, requires_grad=True)
    s = spike_fn_sgp(u, th)
    assert s.tolist() == [0, 0, 1, 1, 1]
    s.sum().backward()
    triangle = (1 - (u.detach() - 1).abs()).clamp_min(0)
    assert torch.allclose(u.grad, triangle)
    fired = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    expected = -(triangle * torch.sigmoid(u.detach() - 1) * fired).sum()
    assert th.grad.item() == pytest.approx(expected.item()) and th.grad.item() < 0
    one = torch.tensor(1.0)
    assert spike_fn(torch.tensor([1.2]), one).item() == spike_fn_sgp(torch.tensor([1.2]), one).item() == 1


def test_binary_membrane_prunes_the_negative_level():
    h = torch.tensor([-3.0, -1.0, -0.4, 0.0, 0.49, 0.5, 2.0], requires_grad=True)
    r = binary_membrane(h, 1.0)
    assert r.tolist() == [0, 0, 0, 0, 0, 1, 1]
    r.sum().backward()
    assert h.grad[0] == 0 and h.grad[1] == 0          # the pruned −1 level passes no gradient
    assert h.grad[5] > 0 and h.grad[2] > 0
