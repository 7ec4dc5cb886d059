"""Quantizers and every straight-through estimator of the training side, in one module.

Weights: float → integer value/code, code → float, and straight-through fake quantization for
QAT and the search supernet; the export writes ``to_codes`` into the weights files that the
golden model (``golden/``) reads. Spikes and membranes: the Heaviside spike with a triangle
surrogate (and SpQuant's separate gradient path for a learnable threshold), the SpQuant ternary
and binary membranes with the stacked sigmoid surrogate, floor/ceil/round
with identity gradients, and the Gumbel-softmax sample of the search. A quantized weight is
always ``scale × v`` with ``v`` the integer the hardware computes with (docs/arithmetic.md §1):

* ``uniform``: ``v = clamp(round(w / scale), -2^(b-1), 2^(b-1) - 1)`` (symmetric, zero-point 0).
* ``pot``: ``v`` is the level of ``{0, ±1, ±2, …, ±2^E}`` (``E = 2^(b-1) - 2``) nearest to
  ``w / scale`` (ties up: ``|w|/scale ≥ 1/2`` → 1, ``≥ 1.5·2^e`` → ``2^(e+1)``). ``scale`` is a
  power of two, so the largest level ``α = scale · 2^E`` is one too and every level is a shift
  of the activation; :func:`pot_scale` picks the power of two with the least squared error
  ``‖w − scale·v‖²`` (one scale per tensor, folded into the integer thresholds and biases at
  export like every other scale).

The integer path (``to_int``) is kept apart from the differentiable one (``fake_quant``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..golden import codes as _codes

__all__ = ["init_scale", "pot_scale", "quantization_error", "synthetic_error_table", "to_int", "to_codes", "from_codes", "fake_quant", "round_ste", "floor_ste", "ceil_ste",
           "exact_round_ste", "spike_fn", "spike_fn_sgp", "ternary_membrane", "binary_membrane",
           "gumbel_softmax_sample"]


def _check(scheme: str, bits: int) -> None:
    if scheme not in _codes.SCHEMES:
        raise ValueError(f"Scheme must be 'pot' or 'uniform', not {scheme!r}")
    if bits not in _codes.SCHEMES[scheme]:
        raise ValueError(f"Weight bits must be 2 or 4, not {bits}")


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest (half to even) forward, identity gradient backward."""
    return x + (torch.round(x) - x).detach()


def init_scale(w: torch.Tensor, scheme: str, bits: int) -> float:
    """A starting scale for ``w``: LSQ's 2·mean|w|/sqrt(Qp) for uniform; for PoT the
    least-squared-error power of two (:func:`pot_scale`), which is also the PoT scale in use."""
    _check(scheme, bits)
    if scheme == "uniform":
        qp = 2 ** (bits - 1) - 1
        return max(float(2 * w.detach().abs().mean() / math.sqrt(qp)), 1e-8)
    return pot_scale(w, bits)


POT_SCALE_SPAN = 10   # candidate tops α: 2^(n-SPAN+1) … 2^n, 2^n the power of two at or above max|w|


@torch.no_grad()
def pot_scale(w: torch.Tensor, bits: int) -> float:
    """The power-of-two scale of ``bits``-bit PoT that minimizes ``‖w − scale·to_int(w)‖²``.

    Candidates: the top level ``α = scale·2^E`` from the power of two at or above max|w| down
    ``POT_SCALE_SPAN - 1`` octaves; ties go to the larger α. A PoT-2 layer thus gets α near the
    magnitude that best splits its weights into 0 and ±α instead of α ≈ max|w| (which zeroes
    almost every weight of a bell-shaped layer)."""
    w = w.detach().float().flatten()
    top = math.ceil(math.log2(max(float(w.abs().max()), 2.0 ** -60)))
    best, best_err = None, math.inf
    for a in range(top, top - POT_SCALE_SPAN, -1):
        scale = 2.0 ** (a - _codes.pot_max_exponent(bits))
        err = float(((w - to_int(w, "pot", bits, scale).to(w.dtype) * scale) ** 2).sum())
        if err < best_err:
            best, best_err = scale, err
    return best


def quantization_error(w: torch.Tensor, scheme: str, bits: int, scale: float | torch.Tensor) -> tuple[float, float]:
    """(relative squared error ``‖w − ŵ‖²/‖w‖²``, share of non-zero quantized weights)."""
    v = to_int(w, scheme, bits, scale)
    w = w.detach().float()
    err = float(((w - v.to(w.dtype) * scale) ** 2).sum() / (w ** 2).sum().clamp_min(1e-30))
    return err, float((v != 0).float().mean())


def _best_uniform_scale(w: torch.Tensor, bits: int, steps: int = 200) -> float:
    """Least-squared-error uniform scale on a grid of ``steps`` values up to 2·max|w|/Qp (for the
    comparison table; the search learns its uniform scales with LSQ)."""
    hi = 2 * float(w.abs().max()) / (2 ** (bits - 1) - 1)
    grid = [hi * (i + 1) / steps for i in range(steps)]
    return min(grid, key=lambda s: quantization_error(w, "uniform", bits, s)[0])


def synthetic_error_table(n: int = 65536, seed: int = 0) -> list[dict]:
    """Relative error and non-zero share of pot2/pot4 (power-of-two scale of :func:`pot_scale`)
    next to uni2/uni4 (least-squared-error scale) on unit Gaussian and Laplace weights."""
    g = torch.Generator().manual_seed(seed)
    gauss = torch.randn(n, generator=g)
    laplace = -torch.log(torch.rand(n, generator=g).clamp_min(1e-12)) * torch.sign(torch.rand(n, generator=g) - 0.5)
    rows = []
    for dist, w in (("gaussian", gauss), ("laplace", laplace)):
        for scheme, bits in (("pot", 2), ("pot", 4), ("uniform", 2), ("uniform", 4)):
            scale = pot_scale(w, bits) if scheme == "pot" else _best_uniform_scale(w, bits)
            err, nonzero = quantization_error(w, scheme, bits, scale)
            rows.append({"distribution": dist, "candidate": f"{'pot' if scheme == 'pot' else 'uni'}{bits}",
                         "scale": scale, "relative_error": err, "nonzero": nonzero})
    return rows


def _pot_exponent(w_over_scale: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest PoT level of ``|w/scale|``: exponent ``e`` (clamped to [0, E]) and the non-zero
    mask. ``m = f·2^k`` with ``f`` in [0.5, 1) (frexp, exact): ``e = k − 1 + [f ≥ 0.75]`` picks
    the nearer of ``2^(k-1)`` and ``2^k``; below 1/2 the nearest level is 0."""
    magnitude = w_over_scale.abs()
    mantissa, exponent = torch.frexp(magnitude)
    e = (exponent - 1 + (mantissa >= 0.75).to(exponent.dtype)).to(magnitude.dtype)
    return e.clamp(0, _codes.pot_max_exponent(bits)), magnitude >= 0.5


def to_int(w: torch.Tensor, scheme: str, bits: int, scale: float | torch.Tensor) -> torch.Tensor:
    """Float weights → the integers ``v`` the hardware computes with (int64)."""
    _check(scheme, bits)
    x = w.detach() / scale
    if scheme == "uniform":
        return torch.round(x).clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1).to(torch.int64)
    e, nonzero = _pot_exponent(x, bits)
    magnitude = torch.where(nonzero, torch.pow(2.0, e), torch.zeros_like(e))
    return (torch.sign(x) * magnitude).to(torch.int64)


def to_codes(w: torch.Tensor, scheme: str, bits: int, scale: float | torch.Tensor) -> torch.Tensor:
    """Float weights → b-bit code words as stored in the weight memory (int64)."""
    values = to_int(w, scheme, bits, scale)
    return torch.from_numpy(_codes.encode(scheme, bits, values.cpu().numpy()))


def from_codes(codes: torch.Tensor, scheme: str, bits: int, scale: float | torch.Tensor) -> torch.Tensor:
    """Code words → float weights ``scale · v``."""
    values = torch.from_numpy(_codes.decode(scheme, bits, torch.as_tensor(codes).cpu().numpy()))
    return values.to(torch.float32) * scale


def fake_quant(w: torch.Tensor, scheme: str, bits: int, scale: float | torch.Tensor) -> torch.Tensor:
    """Quantize-dequantize with the straight-through estimator.

    Forward gives exactly ``scale · to_int(w)``. Backward: the gradient reaches ``w`` unchanged
    inside the representable range and is zero where the value was clipped; for a uniform
    quantizer with a tensor ``scale`` the gradient reaches the scale too (LSQ).
    """
    _check(scheme, bits)
    x = w / scale
    if scheme == "uniform":
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return round_ste(x.clamp(lo, hi)) * scale
    top = float(2 ** _codes.pot_max_exponent(bits))
    clipped = x.clamp(-top, top)
    e, nonzero = _pot_exponent(clipped.detach(), bits)
    q = torch.sign(clipped.detach()) * torch.where(nonzero, torch.pow(2.0, e), torch.zeros_like(e))
    return (clipped + (q - clipped).detach()) * scale


# ---- straight-through helpers (forward exact, identity gradient) -------------------------------

def _ste(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # y.detach() + 0 is exactly y in the forward pass (x - x.detach() is exactly zero)
    return y.detach() + (x - x.detach())


def floor_ste(x):
    return _ste(x, torch.floor(x))


def ceil_ste(x):
    return _ste(x, torch.ceil(x))


def exact_round_ste(x):
    return _ste(x, torch.round(x))


class _SpikeFn(torch.autograd.Function):
    """Heaviside ``[u ≥ θ]`` forward; triangle surrogate of half-width θ backward."""

    @staticmethod
    def forward(ctx, u, threshold):
        ctx.save_for_backward(u, threshold)
        return (u >= threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        u, threshold = ctx.saved_tensors
        surrogate = (1 - (u - threshold).abs() / threshold).clamp_min(0) / threshold
        g = grad * surrogate
        return g, None


def spike_fn(u: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return _SpikeFn.apply(u, torch.as_tensor(threshold, dtype=u.dtype).expand_as(u))


class _TernaryMembrane(torch.autograd.Function):
    """SpQuant ternary membrane: h → q·θ with q = round-half-up(h/θ) clipped to [-1, 1]
    (docs/arithmetic.md §6). Backward: stacked sigmoid surrogate (SpQuant eq. 11–13), one
    sigmoid-derivative bump of smoothness ``k`` at each level boundary ±θ/2."""

    SMOOTHNESS = 4.0

    @staticmethod
    def forward(ctx, h, threshold):
        ctx.save_for_backward(h, threshold)
        q = torch.where(2 * h >= threshold, 1.0, torch.where(2 * h < -threshold, -1.0, 0.0)).to(h.dtype)
        return q * threshold

    @staticmethod
    def backward(ctx, grad):
        h, threshold = ctx.saved_tensors
        x, k = h / threshold, _TernaryMembrane.SMOOTHNESS
        surrogate = torch.zeros_like(x)
        for shift in (-0.5, 0.5):
            s = torch.sigmoid(k * (x - shift))
            surrogate = surrogate + k * s * (1 - s)
        return grad * surrogate, None


def ternary_membrane(h: torch.Tensor, threshold) -> torch.Tensor:
    return _TernaryMembrane.apply(h, torch.as_tensor(threshold, dtype=h.dtype).expand_as(h))


def binary_membrane(h: torch.Tensor, threshold) -> torch.Tensor:
    """SpQuant's binary membrane (eq. 19–20, docs/arithmetic.md §6): the ternary level with −1
    pruned to 0, ``[2h ≥ θ]·θ``; the ternary membrane's stacked sigmoid surrogate wherever the
    ternary level is not −1 (the pruned level passes no gradient)."""
    return ternary_membrane(h, threshold).clamp_min(0)


class _SpikeFnSGP(_SpikeFn):
    """Heaviside ``[u ≥ θ]`` with SpQuant's Separate Gradient Path (eq. 24–27): ``∂S/∂u`` is the
    triangle of :class:`_SpikeFn`; ``∂S/∂θ = −triangle · σ((u − θ)/θ) · [u ≥ θ]`` (the Gradient
    Penalty Window σ = sigmoid, eq. 26, on the membrane in threshold units; only neurons that
    fired pass a gradient, eq. 27). Summing over the neurons of a layer (eq. 27) is autograd's
    reduction of the expanded threshold. Forward as :class:`_SpikeFn`."""

    @staticmethod
    def backward(ctx, grad):
        u, threshold = ctx.saved_tensors
        x = (u - threshold) / threshold
        triangle = (1 - x.abs()).clamp_min(0) / threshold
        window = torch.sigmoid(x) * (u >= threshold).to(u.dtype)
        return grad * triangle, -grad * triangle * window


def spike_fn_sgp(u: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return _SpikeFnSGP.apply(u, torch.as_tensor(threshold, dtype=u.dtype).expand_as(u))


def gumbel_softmax_sample(logits: torch.Tensor, tau: float, hard: bool, generator=None) -> torch.Tensor:
    """Gumbel-softmax over the last dim (Jang et al.); ``hard``: one-hot forward with the soft
    sample's gradient (straight through)."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp(1e-10, 1 - 1e-10)
    g = -torch.log(-torch.log(u))
    soft = F.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft
