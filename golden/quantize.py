"""Weight quantizers for training and export: float → integer value/code, code → float, and
straight-through fake quantization for QAT and the search supernet.

One implementation, shared by the search (issue 3) and the golden model. A quantized weight is
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

from . import codes as _codes

__all__ = ["init_scale", "to_int", "to_codes", "from_codes", "fake_quant", "round_ste"]


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
