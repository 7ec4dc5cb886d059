"""Bit-exact integer reference of one spiking layer over T time steps (docs/arithmetic.md).

Plain int64 tensor code, no autograd, no floats: this is what the RTL computes and nothing
else. Tensors are channel-last: inputs ``[T, H, W, C]``, outputs ``[T, H', W', O]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import codes
from .config import ConfigError, LayerConfig, LayerWeights

__all__ = ["LayerTrace", "integer_weights", "synaptic_current", "spatial_prune", "step_base", "neuron_step", "run_layer",
           "ternary_quantize", "binary_quantize", "relu_key", "check_inputs"]


@dataclass
class LayerTrace:
    """Everything the hardware makes visible for one sample."""

    currents: torch.Tensor   # [T, H', W', O] sum of w·x per step (§3)
    spikes: torch.Tensor     # [T, H', W', O] 0/1 (LIF), -1/0/+1 (ternary) or 0…2^bits−1 (relu key)
    membranes: torch.Tensor  # [T, H', W', O] stored state after each step: h, q ∈ {-1,0,1} or q ∈ {0,1}
    bases: torch.Tensor      # [T, H', W', O] the next step's (r >> s) + b after each step (§10)


def integer_weights(layer: LayerConfig, weights: LayerWeights) -> torch.Tensor:
    """Decoded integer weights, shape [O, C, k, k]."""
    return torch.from_numpy(codes.decode(layer.scheme, layer.bits, weights.codes))


def check_inputs(layer: LayerConfig, inputs: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``inputs`` is an integer [T, H, W, C] tensor in range."""
    shape = (layer.time_steps, layer.height, layer.width, layer.in_channels)
    if tuple(inputs.shape) != shape:
        raise ValueError(f"layer {layer.name!r}: inputs must have shape {list(shape)}, got {list(inputs.shape)}")
    if inputs.dtype.is_floating_point:
        raise ValueError(f"layer {layer.name!r}: inputs must be integers, got {inputs.dtype}")
    a = layer.activation_bits
    lo, hi = codes.activation_range(a)
    if inputs.numel() and (inputs.min() < lo or inputs.max() > hi):
        raise ValueError(f"layer {layer.name!r}: {a}-bit activations must lie in [{lo}, {hi}]")


def synaptic_current(layer: LayerConfig, weights: LayerWeights, inputs: torch.Tensor) -> torch.Tensor:
    """I_t = Σ w·x per output neuron (§3): stride-1 convolution with zero padding, in int64."""
    w = integer_weights(layer, weights)                                  # [O, C, k, k]
    k, p = layer.kernel_size, layer.padding
    x = inputs.to(torch.int64).permute(0, 3, 1, 2)                        # [T, C, H, W]
    T, C, H, W = x.shape
    padded = x.new_zeros(T, C, H + 2 * p, W + 2 * p)                      # zero padding
    padded[:, :, p:p + H, p:p + W] = x
    x = padded
    patches = x.unfold(2, k, 1).unfold(3, k, 1)                          # [T, C, H', W', k, k]
    return torch.einsum("tcyxij,ocij->tyxo", patches, w)


def ternary_quantize(h: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """SpQuant eq. 7 read as round-half-up of h/θ clipped to [-1, 1] (§6)."""
    return torch.where(2 * h >= threshold, 1, torch.where(2 * h < -threshold, -1, 0)).to(torch.int64)


def binary_quantize(h: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """SpQuant's binary membrane (eq. 19–20): the ternary level with −1 pruned to 0 (§6)."""
    return (2 * h >= threshold).to(torch.int64)


def relu_key(u: torch.Tensor, threshold: torch.Tensor, bits: int) -> torch.Tensor:
    """A2OS2A's integer ReLU key (§4): ``clip(floor(u/θ), 0, 2^bits − 1)``."""
    return torch.div(u, threshold, rounding_mode="floor").clamp(0, 2 ** bits - 1)


def spatial_prune(layer: LayerConfig, u: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """SpQuant spatial pruning (§6.1, eq. 21–22) of ``u`` [..., H', W', O]: the positions whose
    count of channels with ``Q(u) ≠ 0`` is at most the k-th smallest count get ``u = 0``."""
    k = layer.spatial_prune_k
    if not k:
        return u
    count = ((2 * u >= threshold) | (2 * u < -threshold)).sum(dim=-1)      # [..., H', W']
    flat = count.flatten(-2)
    kth = flat.kthvalue(k, dim=-1, keepdim=True).values
    pruned = (flat <= kth).view(count.shape)
    return torch.where(pruned.unsqueeze(-1), 0, u)


def step_base(layer: LayerConfig, state: torch.Tensor, bias: torch.Tensor, threshold: torch.Tensor,
              first_step: bool) -> torch.Tensor:
    """A step's ``u`` before its current, ``(r >> s) + b`` (§4 steps 1–2)."""
    if first_step:
        restored = torch.zeros_like(state)
    elif layer.membrane in ("ternary", "binary"):
        restored = state * threshold
    else:
        restored = state
    return (restored >> layer.neuron.leak_shift) + bias


def neuron_step(layer: LayerConfig, state: torch.Tensor, current: torch.Tensor,
                bias: torch.Tensor, threshold: torch.Tensor, first_step: bool):
    """One time step of every neuron (§4–§6). Returns ``(spike, new_state, u)``."""
    u = spatial_prune(layer, step_base(layer, state, bias, threshold, first_step) + current, threshold)
    if layer.neuron.type == "relu":        # stateless: h' = 0, so the next step restores 0
        zero = torch.zeros_like(u)
        return relu_key(u, threshold, layer.neuron.bits), zero, u
    fire_pos = (u >= threshold).to(torch.int64)
    spike = fire_pos - (u <= -threshold).to(torch.int64) if layer.neuron.type == "ternary" else fire_pos
    if layer.neuron.reset == "hard":
        h = torch.where(spike != 0, 0, u)
    else:
        h = u - spike * threshold
    if layer.membrane == "ternary":
        new_state = ternary_quantize(h, threshold)
    elif layer.membrane == "binary":
        new_state = binary_quantize(h, threshold)
    else:
        new_state = h
    return spike, new_state, u


def run_layer(layer: LayerConfig, weights: LayerWeights, inputs: torch.Tensor) -> LayerTrace:
    """Run one sample (T steps, membranes start at zero) through the layer."""
    if not layer.is_hardware:
        raise ConfigError(f"layer {layer.name!r}: scheme fp32 has no integer reference")
    check_inputs(layer, inputs)
    widths = layer.widths(weights)
    currents = synaptic_current(layer, weights, inputs)
    bias, threshold = weights.bias.copy(), weights.threshold.copy()
    bias, threshold = torch.from_numpy(bias), torch.from_numpy(threshold)
    state = torch.zeros_like(currents[0])
    spikes, membranes, bases = [], [], []
    for t in range(layer.time_steps):
        spike, state, u = neuron_step(layer, state, currents[t], bias, threshold, first_step=(t == 0))
        if u.abs().max() > widths.membrane_bound:  # the derivation in §5 says this cannot happen
            raise AssertionError(f"layer {layer.name!r}: |u| exceeded the derived bound {widths.membrane_bound}")
        spikes.append(spike)
        membranes.append(state)
        bases.append(step_base(layer, state, bias, threshold, first_step=False))
    return LayerTrace(currents=currents, spikes=torch.stack(spikes), membranes=torch.stack(membranes),
                      bases=torch.stack(bases))
