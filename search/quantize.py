"""Quantizers and every straight-through estimator of the training side, in one module.

Weights: float → integer value/code, code → float, and straight-through fake quantization for
QAT and the search supernet; the export writes ``to_codes`` into the weights files that the
golden model (``golden/``) reads. Spikes and membranes: the Heaviside spike with a triangle
surrogate, the SpQuant ternary membrane with the stacked sigmoid surrogate, floor/ceil/round
with identity gradients, and the Gumbel-softmax sample of the search. A quantized weight is
always ``scale × v`` with ``v`` the integer the hardware computes with (docs/arithmetic.md §1):

* ``uniform``: ``v = clamp(round(w / scale), -2^(b-1), 2^(b-1) - 1)`` (symmetric, zero-point 0).
* ``pot``: ``v = sign(w) · 2^e`` with ``e = round(log2(|w| / scale))`` clamped to
  ``[0, 2^(b-1) - 2]``; ``|w| / scale < 2^-0.5`` (``e`` rounds below 0) gives ``v = 0``.
  ``scale`` is a power of two, so the largest level ``α = scale · 2^(2^(b-1)-2)`` is one too
  and every level is a shift of the activation.

The integer path (``to_int``) is kept apart from the differentiable one (``fake_quant``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..golden import codes as _codes

__all__ = ["init_scale", "to_int", "to_codes", "from_codes", "fake_quant", "round_ste", "floor_ste", "ceil_ste",
           "exact_round_ste", "spike_fn", "ternary_membrane", "gumbel_softmax_sample"]


def _check(scheme: str, bits: int) -> None:
    if scheme not in _codes.SCHEMES:
        raise ValueError(f"Scheme must be 'pot' or 'uniform', not {scheme!r}")
    if bits not in _codes.SCHEMES[scheme]:
        raise ValueError(f"Weight bits must be 2 or 4, not {bits}")


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest (half to even) forward, identity gradient backward."""
    return x + (torch.round(x) - x).detach()


def init_scale(w: torch.Tensor, scheme: str, bits: int) -> float:
    """A starting scale for ``w``: LSQ's 2·mean|w|/sqrt(Qp) for uniform; for PoT the power of two
    that puts the largest level α at the nearest power of two of max|w|."""
    _check(scheme, bits)
    w = w.detach().abs()
    if scheme == "uniform":
        qp = 2 ** (bits - 1) - 1
        return max(float(2 * w.mean() / math.sqrt(qp)), 1e-8)
    alpha_exp = round(math.log2(max(float(w.max()), 2.0 ** -30)))
    return 2.0 ** (alpha_exp - _codes.pot_max_exponent(bits))


def _pot_exponent(w_over_scale: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    magnitude = w_over_scale.abs()
    e = torch.round(torch.log2(magnitude.clamp_min(2.0 ** -60)))
    nonzero = e >= 0
    return e.clamp(0, _codes.pot_max_exponent(bits)), nonzero


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
