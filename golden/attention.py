"""Bit-exact integer reference of the spiking self-attention unit (docs/arithmetic.md §11).

Per time step and head, ``a = Q·(Kᵀ·V)`` in int64 (channel ``c`` belongs to head
``c // (D / heads)``; SSA: binary q, k, v; A2OS2A: binary q, integer ReLU keys
``0 … 2^bits − 1``, ternary v, no scale), then the attention neuron of §4 with bias 0 and the scalar threshold of
``metadata.network.attention`` (an :class:`golden.config.AttentionConfig`). :class:`golden.network.IntegerNetwork` uses these functions, and
the RTL (:class:`rtl.attention.SpikingAttention`) is checked against :func:`run_attention`.

The width rule (:func:`attention_widths`) is torch-free, like :mod:`golden.config`, so the RTL
generator imports this module without PyTorch; the tensor functions import torch when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import AttentionConfig, LayerConfig, signed_width

if TYPE_CHECKING:
    import torch

__all__ = ["AttentionWidths", "attention_widths", "attention_current", "attention_layer_config",
           "attention_neuron", "run_attention"]


@dataclass(frozen=True)
class AttentionWidths:
    """Bounds and signal widths of the attention unit (docs/arithmetic.md §11)."""

    head_dim: int            # d = D / heads
    kv_bound: int            # max |(Kᵀ·V)[i, j]| = N · k_max · v_max
    current_bound: int       # B_A = max |a| = d · q_max · kv_bound
    membrane_bound: int      # integer: T·B_A; ternary: θ + B_A (bias is 0)
    threshold: int
    kv_width: int
    current_width: int
    membrane_width: int
    threshold_width: int
    bias_width: int = 2      # the bias is 0: signed_width(0)


def attention_widths(*, tokens: int, channels: int, time_steps: int, attention: AttentionConfig,
                     q_max: int, k_max: int, v_max: int) -> AttentionWidths:
    """Bound |a| and derive every width from the largest |q|, |k|, |v| a step can carry.

    ``(Kᵀ·V)[i, j] = Σ_m k[m, i]·v[m, j]`` sums N products, ``a[n, j] = Σ_i q[n, i]·(Kᵀ·V)[i, j]``
    sums d of them; the neuron follows §5 with ``B_I = B_A`` and ``B_b = 0``.
    """
    heads = attention.heads
    if channels % heads:
        raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
    d = channels // heads
    theta = attention.threshold
    if theta < 1:
        raise ValueError(f"attention threshold must be >= 1, got {theta}")
    kv = tokens * k_max * v_max
    current = d * q_max * kv
    membrane = time_steps * current if attention.membrane == "integer" else theta + current
    return AttentionWidths(head_dim=d, kv_bound=kv, current_bound=current, membrane_bound=membrane, threshold=theta,
                           kv_width=signed_width(kv), current_width=signed_width(current),
                           membrane_width=signed_width(membrane), threshold_width=theta.bit_length())


def attention_current(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """``a = Q·(Kᵀ·V)`` per head: q, k, v int [..., N, D] → int64 [..., N, D]."""
    import torch

    *lead, n, D = q.shape
    if tuple(k.shape) != tuple(q.shape) or tuple(v.shape) != tuple(q.shape):
        raise ValueError(f"q, k, v must have one shape, got {list(q.shape)}, {list(k.shape)}, {list(v.shape)}")
    if D % heads:
        raise ValueError(f"channels ({D}) must be a multiple of heads ({heads})")
    split = lambda z: z.to(torch.int64).reshape(*lead, n, heads, D // heads).transpose(-3, -2)  # [..., H, N, d]
    q, k, v = split(q), split(k), split(v)
    a = q @ (k.transpose(-2, -1) @ v)
    return a.transpose(-3, -2).reshape(*lead, n, D)


def attention_layer_config(attention: AttentionConfig, time_steps: int) -> LayerConfig:
    """The neuron of the attention unit as a one-neuron layer (only ``neuron``, ``membrane`` and
    ``time_steps`` matter to :func:`golden.reference.neuron_step`)."""
    return LayerConfig(name="attention", kind="linear", in_channels=1, out_channels=1, kernel_size=1, padding=0,
                       height=1, width=1, scheme="uniform", bits=2, activation_bits=8, lanes=1,
                       neuron=attention.neuron, membrane=attention.membrane, time_steps=time_steps)


def attention_neuron(a: torch.Tensor, attention: AttentionConfig, time_steps: int,
                     membrane_bound: int | None = None) -> torch.Tensor:
    """Run the attention neuron over ``a`` int [T, ...] (membranes start at 0) → spikes [T, ...].

    With ``membrane_bound``, assert ``|u| ≤ membrane_bound`` every step (§5)."""
    import torch

    from .reference import neuron_step
    cfg = attention_layer_config(attention, time_steps)
    th = torch.tensor(attention.threshold, dtype=torch.int64)
    state, out = torch.zeros_like(a[0]), []
    for t in range(a.shape[0]):
        s, state, u = neuron_step(cfg, state, a[t], torch.zeros((), dtype=torch.int64), th, first_step=(t == 0))
        if membrane_bound is not None and u.numel() and u.abs().max() > membrane_bound:
            raise AssertionError(f"attention: |u| exceeded the derived bound {membrane_bound}")
        out.append(s)
    return torch.stack(out)


def run_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention: AttentionConfig,
                  time_steps: int) -> torch.Tensor:
    """One sample: q, k, v int [T, N, D] → spikes int64 [T, N, D] (0/1, or -1/0/+1 for ternary)."""
    if q.dim() != 3 or q.shape[0] != time_steps:
        raise ValueError(f"q: expected [T={time_steps}, N, D], got {list(q.shape)}")
    a = attention_current(q, k, v, attention.heads)
    largest = lambda z: max(1, int(z.abs().max())) if z.numel() else 1
    w = attention_widths(tokens=q.shape[1], channels=q.shape[2], time_steps=time_steps,
                         attention=attention, q_max=largest(q), k_max=largest(k), v_max=largest(v))
    if a.numel() and a.abs().max() > w.current_bound:      # the derivation says this cannot happen
        raise AssertionError(f"attention: |a| exceeded the derived bound {w.current_bound}")
    return attention_neuron(a, attention, time_steps, membrane_bound=w.membrane_bound)
