"""Spikformer-style spiking vision transformer with per-layer quantization candidates.

Training/autograd side of spikehq (the bit-exact integer side is ``golden/network.py``); the
quantizers and straight-through estimators it uses live in :mod:`spikehq.search.quantize`.

Architecture (Zhou et al., Spikformer; SpikeHQ paper Fig. 1)::

    frames [T, B, 2, H, W] (binary event frames)
    tokenizer: (conv3×3 → BN → neuron [→ 2×2 max-pool]) × len(tokenizer_channels)
    rpe:       x = s + neuron(BN(conv3×3(s)))           relative-position conv, residual
    tokens:    [T, B, N = H'·W', D]
    L blocks:  x = x + SA(x);  x = x + MLP(x)
      SSA:     Q, K, V = neuron(BN(linear(x)))  (binary)   A = Q·Kᵀ·V · 2^-attn_shift
      A2OS2A:  Q binary neuron, K = clip(floor(ReLU(BN(linear))/key_step), 0, 2^key_bits − 1)
               (integer ReLU key, docs/arithmetic.md §4), V ternary neuron,   A = Q·Kᵀ·V
               out = neuron(BN(proj(neuron_attn(A))))
      MLP:     neuron(BN(fc2(neuron(BN(fc1(x))))))
    head:      linear(mean over tokens) averaged over T (no bias: it folds to an integer readout)

Every conv/linear is a :class:`QuantLayer` whose weight is one of the 5 candidates
(``fp32, pot2, pot4, uni2, uni4``) or, during the search, a Gumbel-softmax mixture of all of
them. Quantization uses ``search/quantize.py`` (the one implementation).

Neurons: binary LIF or ternary spiking neuron; membrane full precision (``float``), SpQuant
ternary (``ternary``, stacked sigmoid surrogate) or SpQuant binary (``binary``, eq. 19–20).
SpQuant options (docs/search.md "SpQuant-SNN"): a learnable layer-wise threshold with the
Separate Gradient Path (``threshold_learning = "sgp"``, eq. 24–27), spatial pruning of the
membrane by its importance (``spatial_sparsity``, eq. 21–22) and channel masks from the
membrane-potential prior (``channel_threshold``, eq. 23). ``integer`` mode simulates the hardware's
integer arithmetic exactly (docs/arithmetic.md §4, §8): integer weights and currents,
per-channel integer bias ``round(c/g)`` and threshold ``ceil(V_th/g)``, leak ``floor(u·2^-s)``;
gradients pass straight through the roundings. Trained to the end in this mode, the model's
predictions equal the golden integer network's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..golden.codes import activation_max_abs, activation_range, weight_max_abs
from ..golden.config import default_lanes
from . import quantize
from .cost import CANDIDATES, LayerShape, candidate_scheme
from .quantize import (binary_membrane, ceil_ste, exact_round_ste, floor_ste, gumbel_softmax_sample, spike_fn,
                       spike_fn_sgp, ternary_membrane)

__all__ = ["ModelConfig", "preset_config", "PRESETS", "QuantLayer", "Neuron", "SpikingTransformer",
           "bits_for_range", "paper_layers"]


# ---- configuration -----------------------------------------------------------------------------

# SpQuant options and their "off" values (ModelConfig.to_dict leaves those out)
_SPQUANT_DEFAULTS = {"threshold_learning": "fixed", "spatial_sparsity": 0.0, "channel_threshold": 0.0}


@dataclass(frozen=True)
class ModelConfig:
    in_channels: int = 2
    image_size: tuple[int, int] = (8, 8)
    time_steps: int = 4
    tokenizer_channels: tuple[int, ...] = (16, 32, 64)
    pool_after: tuple[bool, ...] = (False, True, False)
    depth: int = 2
    heads: int = 4
    mlp_hidden: int = 128
    classes: int = 10
    attention: str = "ssa"          # ssa | a2os2a
    neuron: str = "lif"             # lif | ternary
    membrane: str = "float"         # float | ternary | binary (SpQuant)
    leak_shift: int = 1             # τ = 2^-leak_shift
    reset: str = "hard"             # hard | soft
    v_th: float = 1.0
    attn_shift: int = 3             # SSA scale 2^-attn_shift (0.125 as in Spikformer)
    attn_v_th: float = 0.5          # attention neuron threshold (Spikformer: 0.5)
    threshold_learning: str = "fixed"   # fixed | sgp (SpQuant eq. 24–27, layer-wise V_th)
    spatial_sparsity: float = 0.0   # share of positions pruned per step in conv layers (SpQuant: 0.35)
    channel_threshold: float = 0.0  # channel-mask threshold θ on the keep probability; 0 = off (SpQuant: 0.47)
    key_bits: int = 2               # A2OS2A: integer ReLU key K ∈ [0, 2^key_bits − 1]
    key_step: float = 0.5           # A2OS2A: float size of one key level (K = clip(floor(ReLU(y)/step)))

    @property
    def dim(self) -> int:
        return self.tokenizer_channels[-1]

    def validate(self) -> "ModelConfig":
        def bad(field_, expected, got):
            raise ValueError(f"model config {field_}: expected {expected}, got {got!r}")
        if self.attention not in ("ssa", "a2os2a"):
            bad("attention", "'ssa' or 'a2os2a'", self.attention)
        if self.neuron not in ("lif", "ternary"):
            bad("neuron", "'lif' or 'ternary'", self.neuron)
        if self.membrane not in ("float", "ternary", "binary"):
            bad("membrane", "'float', 'ternary' or 'binary'", self.membrane)
        if self.membrane == "binary" and (self.neuron != "lif" or self.attention != "ssa"):
            bad("membrane", "'float' or 'ternary' with ternary neurons or A2OS2A's ternary V (binary silences "
                "their -1 spikes)", self.membrane)
        if self.threshold_learning not in ("fixed", "sgp"):
            bad("threshold_learning", "'fixed' or 'sgp'", self.threshold_learning)
        if not 0.0 <= self.spatial_sparsity < 1.0:
            bad("spatial_sparsity", "a share in [0, 1)", self.spatial_sparsity)
        if not 0.0 <= self.channel_threshold < 1.0:
            bad("channel_threshold", "0 (off) or a probability in (0, 1)", self.channel_threshold)
        if self.reset not in ("hard", "soft"):
            bad("reset", "'hard' or 'soft'", self.reset)
        if len(self.pool_after) != len(self.tokenizer_channels):
            bad("pool_after", f"{len(self.tokenizer_channels)} entries (one per tokenizer conv)", list(self.pool_after))
        if self.dim % self.heads:
            bad("heads", f"a divisor of the embedding width {self.dim}", self.heads)
        h, w = self.image_size
        for pool in self.pool_after:
            if pool:
                if h % 2 or w % 2:
                    bad("image_size", "sides divisible by 2 at every pooling", self.image_size)
                h, w = h // 2, w // 2
        for name in ("time_steps", "depth", "heads", "mlp_hidden", "classes", "in_channels"):
            if getattr(self, name) < 1:
                bad(name, "an integer >= 1", getattr(self, name))
        if not 0 <= self.leak_shift <= 16:
            bad("leak_shift", "0..16", self.leak_shift)
        if self.key_bits not in range(1, 5):       # the contract's relu keys: 1–4 bits (docs/arithmetic.md §4)
            bad("key_bits", "1..4", self.key_bits)
        if not (isinstance(self.key_step, (int, float)) and math.isfinite(self.key_step) and self.key_step > 0):
            bad("key_step", "a number > 0", self.key_step)
        return self

    @property
    def token_grid(self) -> tuple[int, int]:
        h, w = self.image_size
        for pool in self.pool_after:
            if pool:
                h, w = h // 2, w // 2
        return h, w

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        d["tokenizer_channels"] = list(self.tokenizer_channels)
        d["pool_after"] = list(self.pool_after)
        if self.attention != "a2os2a":       # the key only exists in A2OS2A (SSA results stay as they were)
            del d["key_bits"], d["key_step"]
        for name in _SPQUANT_DEFAULTS:       # SpQuant options left at "off" are not recorded (likewise)
            if d[name] == _SPQUANT_DEFAULTS[name]:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        for key in ("image_size", "tokenizer_channels", "pool_after"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d).validate()


PRESETS = {
    # CPU-sized, for the 8×8 digits event frames: 16 tokens of width 64.
    "tiny": ModelConfig(),
    # Spikformer-2-256 for DVS (128×128 input, 8×8 = 64 tokens, T = 16), as in the paper.
    "paper": ModelConfig(in_channels=2, image_size=(128, 128), time_steps=16,
                         tokenizer_channels=(32, 64, 128, 256), pool_after=(True, True, True, True),
                         depth=2, heads=16, mlp_hidden=1024, classes=11),
}


def preset_config(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    cfg = PRESETS[name]
    if "image_size" in overrides and isinstance(overrides["image_size"], int):
        overrides["image_size"] = (overrides["image_size"], overrides["image_size"])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **overrides).validate()


def bits_for_range(lo: int, hi: int) -> int:
    """activation_bits for integers in [lo, hi]: 1 for binary spikes, else signed width."""
    if lo >= 0 and hi <= 1:
        return 1
    a = 2
    while not (activation_range(a)[0] <= lo and hi <= activation_range(a)[1]):
        a += 1
    return a


# ---- neurons -----------------------------------------------------------------------------------

class Neuron(nn.Module):
    """Multi-step spiking neuron over the leading time dimension.

    ``u_t = τ·r_{t-1} + y_t``; binary LIF fires ``[u ≥ θ]``, the ternary neuron
    ``[u ≥ θ] − [u ≤ −θ]``; hard reset to 0 or soft reset ``u − S·θ``; the stored state is
    ``h`` (float membrane), ``Q(h)·θ`` (ternary membrane) or ``max(Q(h), 0)·θ`` (binary). In
    integer mode the leak is ``floor(τ·r)`` (the hardware's arithmetic shift), inputs are
    integer-valued. ``sgp``: the threshold gets SpQuant's separate gradient path (eq. 24–27).
    ``spatial_sparsity`` (conv layers, ``u`` of shape [B, C, H, W]): every step, the positions
    whose importance ``‖Q(u)‖₂`` over the channels is at most the k-th smallest, k = ⌊share·H·W⌋,
    are pruned before firing (eq. 21–22): no spike, state 0; ``pruned_share`` is the share of
    positions pruned in the last forward. ``prior_dim`` (the channel dim of ``u``): ``prior``
    holds the mean ``|u|`` per channel over the last forward's steps, samples and positions (the
    channel masks' membrane-potential prior).
    """

    def __init__(self, *, kind: str, membrane: str, leak_shift: int, reset: str, sgp: bool = False,
                 spatial_sparsity: float = 0.0, prior_dim: int | None = None):
        super().__init__()
        self.kind, self.membrane, self.leak_shift, self.reset = kind, membrane, leak_shift, reset
        self.sgp, self.spatial_sparsity, self.prior_dim = sgp, spatial_sparsity, prior_dim
        self.prior: torch.Tensor | None = None
        self.pruned_share = 0.0

    def _spatial_mask(self, u: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        """Eq. 21–22: keep the positions whose ‖Q(u)‖₂ over channels exceeds the k-th smallest."""
        with torch.no_grad():
            q = torch.where(2 * u >= th, 1.0, torch.where(2 * u < -th, -1.0, 0.0))
            importance = q.square().sum(dim=1).sqrt().flatten(1)                       # [B, H·W]
            k = int(self.spatial_sparsity * importance.shape[1])
            if k < 1:
                return torch.ones_like(u[:, :1])
            kth = importance.kthvalue(k, dim=1, keepdim=True).values
            keep = (importance > kth).to(u.dtype)
            self._pruned += float(1 - keep.mean())
            return keep.view(u.shape[0], 1, *u.shape[2:])

    def forward(self, y: torch.Tensor, threshold, integer: bool = False) -> torch.Tensor:
        tau = 2.0 ** -self.leak_shift
        threshold = torch.as_tensor(threshold, dtype=y.dtype)
        fire = spike_fn_sgp if self.sgp else spike_fn
        spatial = self.spatial_sparsity > 0
        self._pruned, prior = 0.0, 0.0
        r, spikes = None, []
        for t in range(y.shape[0]):
            if r is None:
                u = y[t]
            else:
                leak = r * tau
                u = (floor_ste(leak) if integer else leak) + y[t]
            th = threshold.expand_as(u)
            if self.prior_dim is not None:
                prior = prior + u.detach().abs().movedim(self.prior_dim, 0).flatten(1).mean(dim=1)
            if spatial:
                u = u * self._spatial_mask(u, th)
            s = fire(u, th)
            if self.kind == "ternary":
                s = s - fire(-u, th)
            h = u * (1 - s.abs()) if self.reset == "hard" else u - s * th
            if self.membrane == "ternary":
                r = ternary_membrane(h, th)
            elif self.membrane == "binary":
                r = binary_membrane(h, th)
            else:
                r = h
            spikes.append(s)
        self.prior = prior / y.shape[0] if self.prior_dim is not None else None
        self.pruned_share = self._pruned / y.shape[0] if spatial else 0.0
        return torch.stack(spikes)


class BatchNorm(nn.Module):
    """BatchNorm over every dim but ``channel_dim`` (time and batch pooled, tdBN-style) with
    ``γ`` kept positive (docs/arithmetic.md §8: the folded gain must be > 0). ``frozen``
    uses the running statistics in training too (needed for integer-mode QAT)."""

    GAMMA_MIN = 1e-3

    def __init__(self, channels: int, channel_dim: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.channel_dim, self.momentum, self.eps = channel_dim, momentum, eps
        self.frozen = False

    def _shape(self, x):
        shape = [1] * x.dim()
        shape[self.channel_dim] = -1
        return shape

    def fold(self, z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gain ``a`` and offset ``c`` of ``y = a·z + c`` with the running (or batch) stats."""
        if z is not None and self.training and not self.frozen:
            dims = [d for d in range(z.dim()) if d != self.channel_dim]
            mean = z.mean(dim=dims)
            var = z.var(dim=dims, unbiased=False)
            with torch.no_grad():
                n = z.numel() / z.shape[self.channel_dim]
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * n / max(n - 1, 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        a = self.weight.clamp_min(self.GAMMA_MIN) / torch.sqrt(var + self.eps)
        return a, self.bias - a * mean

    def forward(self, z):
        a, c = self.fold(z)
        return z * a.view(self._shape(z)) + c.view(self._shape(z))


# ---- quantized conv / linear -------------------------------------------------------------------

class QuantLayer(nn.Module):
    """A conv2d (3×3 or any k, stride 1, 'same'-style padding) or linear layer with the five
    quantization candidates. ``choice`` None = search mode (mixture with ``self.sample``)."""

    def __init__(self, shape: LayerShape, *, bias: bool = False):
        super().__init__()
        self.shape = shape
        k = shape.kernel_size
        if shape.kind == "conv2d":
            w = torch.empty(shape.out_channels, shape.in_channels, k, k)
        else:
            w = torch.empty(shape.out_channels, shape.in_channels)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.weight = nn.Parameter(w)
        self.alpha = nn.Parameter(torch.zeros(len(CANDIDATES)))              # selection logits
        self.uscale = nn.Parameter(torch.ones(2))                             # LSQ scales uni2, uni4
        self.register_buffer("cost", torch.zeros(len(CANDIDATES)))           # normalized hw cost
        self.choice: int | None = 0                                           # fp32 until told
        self.sample: torch.Tensor | None = None
        self.activation_bits = 1

    @property
    def name(self) -> str:
        return self.shape.name

    @property
    def candidate(self) -> str | None:
        return None if self.choice is None else CANDIDATES[self.choice]

    def init_scales(self) -> None:
        with torch.no_grad():
            for i, bits in enumerate((2, 4)):
                self.uscale[i] = quantize.init_scale(self.weight, "uniform", bits)

    def scale(self, candidate: str):
        scheme, bits = candidate_scheme(candidate)
        if scheme == "fp32":
            return 1.0
        if scheme == "pot":   # a function of the current weights (power of two), no gradient
            return quantize.init_scale(self.weight, "pot", bits)
        return self.uscale[0 if bits == 2 else 1].clamp_min(1e-8)

    def quant_weight(self, candidate: str) -> torch.Tensor:
        scheme, bits = candidate_scheme(candidate)
        if scheme == "fp32":
            return self.weight
        return quantize.fake_quant(self.weight, scheme, bits, self.scale(candidate))

    def current_bound(self) -> int:
        """B_I of docs/arithmetic.md §3: max |Σ w·x| in one step for the fixed choice."""
        scheme, bits = candidate_scheme(self.candidate)
        x_max = activation_max_abs(self.activation_bits)
        return self.shape.in_channels * self.shape.kernel_size ** 2 * weight_max_abs(scheme, bits) * x_max

    def int_weight(self) -> torch.Tensor:
        """Integer-valued weights ``v`` (exact in float32) with the fake-quant gradient."""
        cand = self.candidate
        if cand is None or cand == "fp32":
            raise ValueError(f"layer {self.name!r}: integer weights need a fixed non-fp32 choice, got {cand}")
        return exact_round_ste(self.quant_weight(cand) / self.scale(cand))

    def effective_weight(self) -> torch.Tensor:
        if self.choice is not None:
            return self.quant_weight(CANDIDATES[self.choice])
        if self.sample is None:
            raise RuntimeError(f"layer {self.name!r}: search mode needs a Gumbel sample (set_sample)")
        return sum(self.sample[i] * self.quant_weight(c) for i, c in enumerate(CANDIDATES))

    def op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.shape.kind == "conv2d":
            return F.conv2d(x, w, padding=self.shape.padding)
        return F.linear(x, w)

    def forward(self, x: torch.Tensor, integer: bool = False) -> torch.Tensor:
        """conv2d: x [N, C, H, W]; linear: x [..., C]. Integer mode returns the integer current."""
        if integer:
            return exact_round_ste(self.op(x, self.int_weight()))
        return self.op(x, self.effective_weight())

    def hardware_loss(self) -> torch.Tensor:
        """Σ_options softmax(α)·cost (paper eq. 13, this layer's term)."""
        return (F.softmax(self.alpha, dim=0) * self.cost).sum()


class ChannelGate(nn.Module):
    """SpQuant channel masks from the membrane-potential prior (eq. 23), one per layer so that a
    masked channel can leave the hardware (docs/search.md "SpQuant-SNN").

    Prior ``z_c``: the layer's mean ``|u|`` per output channel (the neuron's ``prior``; the
    paper's 2×2 average pooling disappears in this mean), divided by its mean over channels.
    A point-wise (1×1) layer gives per-channel logits ``W·z + b`` (``W = 4·I``, ``b = −4`` at
    the start: channels below the average activity start masked); the two-way softmax of
    keep/skip is ``p = σ(logit)``; the mask keeps the channels with ``p ≥ θ`` (θ =
    ``channel_threshold``, 0.47 in the paper), rounded up to a multiple of ``quantum`` by the
    most likely others (at least one quantum), straight through ``p``'s gradient. ``quantum``
    is the layer's default lane count, so the masked channels are whole lane groups: they leave
    the hardware without changing its lanes. Training uses the batch's prior; eval and
    frozen-BatchNorm (integer) training use the running prior, so the exported mask is the one
    integer QAT trained with."""

    def __init__(self, channels: int, threshold: float, quantum: int = 1, momentum: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(4.0 * torch.eye(channels))
        self.bias = nn.Parameter(torch.full((channels,), -4.0))
        self.register_buffer("running_prior", torch.ones(channels))
        self.threshold, self.quantum, self.momentum = threshold, quantum, momentum

    def forward(self, prior: torch.Tensor | None, use_running: bool) -> torch.Tensor:
        if prior is not None and not use_running:
            with torch.no_grad():
                self.running_prior.lerp_(prior, self.momentum)
        else:
            prior = self.running_prior
        z = prior / prior.mean().clamp_min(1e-12)
        p = torch.sigmoid(self.weight @ z + self.bias)
        q = self.quantum
        keep = min(len(p), max(q, -(-int((p >= self.threshold).sum()) // q) * q))
        hard = torch.zeros_like(p).scatter(0, p.detach().topk(keep).indices, 1.0)
        return hard + p - p.detach()

    @torch.no_grad()
    def kept(self) -> torch.Tensor:
        """Indices of the channels the running prior keeps (what the export writes)."""
        return torch.nonzero(self(None, use_running=True) > 0.5).flatten()


class SpikingUnit(nn.Module):
    """QuantLayer → BatchNorm → neuron; folds to integer bias/threshold in integer mode.
    ``gate``: SpQuant channel masks on the output (:class:`ChannelGate`); ``spatial``: the
    neuron prunes positions (conv layers, ``cfg.spatial_sparsity``). With ``cfg.threshold_learning
    == "sgp"`` the layer's ``V_th`` is a parameter trained through the separate gradient path."""

    def __init__(self, shape: LayerShape, cfg: ModelConfig, *, channel_dim: int, neuron: str | None = None,
                 spiking: bool = True, gate: bool = False, spatial: bool = False):
        super().__init__()
        self.layer = QuantLayer(shape)
        self.bn = BatchNorm(shape.out_channels, channel_dim)
        gate = gate and cfg.channel_threshold > 0
        self.neuron = Neuron(kind=neuron or cfg.neuron, membrane=cfg.membrane, leak_shift=cfg.leak_shift,
                             reset=cfg.reset, sgp=cfg.threshold_learning == "sgp",
                             spatial_sparsity=cfg.spatial_sparsity if spatial else 0.0,
                             prior_dim=(1 if channel_dim == 1 else -1) if gate else None)
        lanes = default_lanes(shape.out_channels)
        self.gate = ChannelGate(shape.out_channels, cfg.channel_threshold, quantum=lanes) if gate else None
        self.spiking = spiking            # False: A2OS2A's integer ReLU key (its "threshold" is the key step)
        v_th = cfg.v_th if spiking else cfg.key_step      # the key step stays fixed (docs/search.md)
        self.v_th = nn.Parameter(torch.tensor(float(v_th))) if cfg.threshold_learning == "sgp" and spiking else v_th
        self.key_max = 2 ** cfg.key_bits - 1
        self.channel_dim = channel_dim

    V_TH_MIN = 0.05    # a learnable threshold stays above this (a threshold must stay positive)

    def threshold(self):
        """The float V_th: the fixed one, or the learned one clamped to ≥ V_TH_MIN."""
        return self.v_th.clamp_min(self.V_TH_MIN) if isinstance(self.v_th, nn.Parameter) else self.v_th

    def channel_mask(self) -> torch.Tensor | None:
        if self.gate is None:
            return None
        return self.gate(self.neuron.prior, use_running=not self.training or self.bn.frozen)

    def _masked(self, s: torch.Tensor) -> torch.Tensor:
        mask = self.channel_mask()
        if mask is None:
            return s
        shape = [1] * s.dim()
        shape[2 if self.channel_dim == 1 else -1] = -1
        return s * mask.view(shape)

    FOLD_CAP = 4   # |bias| and threshold are capped at FOLD_CAP · B_I (docs/search.md)

    def integer_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel float ``c/g`` and ``V_th/g`` (docs/arithmetic.md §8), before rounding,
        clipped to ±FOLD_CAP·B_I (a channel whose gain g is tiny would otherwise get a
        threshold or bias far beyond anything its current can reach)."""
        a, c = self.bn.fold()
        g = a * self.layer.scale(self.layer.candidate)
        cap = float(self.FOLD_CAP * self.layer.current_bound())
        return (c / g).clamp(-cap, cap), (self.threshold() / g).clamp(1.0, cap)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The exported integers: bias ``round(c/g)``, threshold ``max(1, ceil(V_th/g))``."""
        b, th = self.integer_params()
        return torch.round(b), torch.ceil(th).clamp_min(1)

    def _view(self, v, ndim):
        shape = [1] * ndim
        shape[self.channel_dim] = -1
        return v.view(shape)

    def forward(self, x: torch.Tensor, T: int, integer: bool = False) -> torch.Tensor:
        """x [T·B, ...] (flattened time) → spikes [T, B, ...] (integer keys for the ReLU key)."""
        if integer:
            current = self.layer(x, integer=True)
            b, th = self.integer_params()
            b, th = exact_round_ste(b), ceil_ste(th).clamp_min(1)
            y = current + self._view(b, current.dim())
            y = y.view(T, -1, *y.shape[1:])
            if not self.spiking:      # stateless: k = clip(floor((I + b)/θ), 0, 2^bits − 1)
                th = self._view(th, current.dim())
                q = y / th
                exact = (y - torch.remainder(y, th)).detach() / th.detach()   # floor without float rounding
                return (q + (exact - q).detach()).clamp(0, self.key_max)
            return self._masked(self.neuron(y, self._view(th, current.dim()), integer=True))
        y = self.bn(self.layer(x))
        y = y.view(T, -1, *y.shape[1:])
        if not self.spiking:
            return self.relu_key(y / self.threshold())
        return self._masked(self.neuron(y, self.threshold()))

    def relu_key(self, y: torch.Tensor) -> torch.Tensor:
        """``clip(floor(y), 0, key_max)`` with straight-through floor (gradient 0 outside the range)."""
        return floor_ste(y).clamp(0, self.key_max)


# ---- the network -------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, index: int, cfg: ModelConfig, tokens: int):
        super().__init__()
        D, p = cfg.dim, f"b{index}_"
        lin = lambda name, i, o, g: LayerShape(name=p + name, kind="linear", in_channels=i, out_channels=o,
                                               height=tokens, width=1, group=g)
        a2 = cfg.attention == "a2os2a"
        self.q = SpikingUnit(lin("q", D, D, "attention"), cfg, channel_dim=-1, neuron="lif" if a2 else None)
        self.k = SpikingUnit(lin("k", D, D, "attention"), cfg, channel_dim=-1, spiking=not a2)
        self.v = SpikingUnit(lin("v", D, D, "attention"), cfg, channel_dim=-1, neuron="ternary" if a2 else None)
        # the attention unit has no binary membrane (docs/search.md): it keeps the ternary one
        membrane = "ternary" if cfg.membrane == "binary" else cfg.membrane
        self.attn_neuron = Neuron(kind=cfg.neuron, membrane=membrane, leak_shift=cfg.leak_shift, reset=cfg.reset)
        self.proj = SpikingUnit(lin("proj", D, D, "attention"), cfg, channel_dim=-1)
        self.fc1 = SpikingUnit(lin("fc1", D, cfg.mlp_hidden, "mlp"), cfg, channel_dim=-1, gate=True)
        self.fc2 = SpikingUnit(lin("fc2", cfg.mlp_hidden, D, "mlp"), cfg, channel_dim=-1)
        self.cfg = cfg

    def attn_threshold(self) -> float:
        """SSA: V_attn / 2^-attn_shift in units of Q·Kᵀ·V (an integer when V_attn·2^shift is)."""
        if self.cfg.attention == "ssa":
            return self.cfg.attn_v_th * 2 ** self.cfg.attn_shift
        return self.cfg.attn_v_th

    def attention(self, x: torch.Tensor, integer: bool) -> torch.Tensor:
        T, B, N, D = x.shape
        H = self.cfg.heads
        flat = x.reshape(T * B, N, D)
        q, k, v = (u(flat, T, integer) for u in (self.q, self.k, self.v))        # [T, B, N, D]
        split = lambda z: z.reshape(T, B, N, H, D // H).transpose(2, 3)          # [T, B, H, N, d]
        q, k, v = split(q), split(k), split(v)
        a = q @ (k.transpose(-2, -1) @ v)                                         # Q·(Kᵀ·V), [T,B,H,N,d]
        if integer:
            a = exact_round_ste(a)
            th = math.ceil(self.attn_threshold())
        else:
            th = self.attn_threshold()
        s = self.attn_neuron(a, th, integer=integer)
        s = s.transpose(2, 3).reshape(T * B, N, D)
        return self.proj(s, T, integer)

    def forward(self, x: torch.Tensor, integer: bool = False) -> torch.Tensor:
        T, B, N, D = x.shape
        x = x + self.attention(x, integer)
        h = self.fc1(x.reshape(T * B, N, D), T, integer)
        return x + self.fc2(h.reshape(T * B, N, -1), T, integer)


class SpikingTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        shapes = self.layer_shapes_for(cfg)
        by_name = {s.name: s for s in shapes}
        n_tok = len(cfg.tokenizer_channels)
        self.tokenizer = nn.ModuleList(   # channel masks where no residual ties the width: all but the last
            SpikingUnit(by_name[f"tok{i}"], cfg, channel_dim=1, gate=i < n_tok - 1, spatial=True) for i in range(n_tok))
        self.rpe = SpikingUnit(by_name["rpe"], cfg, channel_dim=1, spatial=True)
        tokens = cfg.token_grid[0] * cfg.token_grid[1]
        self.blocks = nn.ModuleList(Block(i, cfg, tokens) for i in range(cfg.depth))
        self.head = QuantLayer(by_name["head"])
        self._set_activation_bits()

    # -- structure --------------------------------------------------------------------------
    @staticmethod
    def layer_shapes_for(cfg: ModelConfig) -> list[LayerShape]:
        shapes, (h, w), cin = [], cfg.image_size, cfg.in_channels
        for i, (cout, pool) in enumerate(zip(cfg.tokenizer_channels, cfg.pool_after)):
            shapes.append(LayerShape(name=f"tok{i}", kind="conv2d", in_channels=cin, out_channels=cout,
                                     kernel_size=3, padding=1, height=h, width=w, group="tokenizer"))
            cin = cout
            if pool:
                h, w = h // 2, w // 2
        D = cfg.dim
        shapes.append(LayerShape(name="rpe", kind="conv2d", in_channels=D, out_channels=D, kernel_size=3,
                                 padding=1, height=h, width=w, group="tokenizer"))
        tokens = h * w
        for b in range(cfg.depth):
            for name, i, o, g in (("q", D, D, "attention"), ("k", D, D, "attention"), ("v", D, D, "attention"),
                                  ("proj", D, D, "attention"), ("fc1", D, cfg.mlp_hidden, "mlp"),
                                  ("fc2", cfg.mlp_hidden, D, "mlp")):
                shapes.append(LayerShape(name=f"b{b}_{name}", kind="linear", in_channels=i, out_channels=o,
                                         height=tokens, width=1, group=g))
        shapes.append(LayerShape(name="head", kind="linear", in_channels=D, out_channels=cfg.classes,
                                 height=tokens, width=1, group="head"))
        return shapes

    def layer_shapes(self) -> list[LayerShape]:
        return [layer.shape for layer in self.quant_layers()]

    def units(self) -> dict[str, SpikingUnit]:
        out = {u.layer.name: u for u in self.tokenizer}
        out["rpe"] = self.rpe
        for blk in self.blocks:
            for u in (blk.q, blk.k, blk.v, blk.proj, blk.fc1, blk.fc2):
                out[u.layer.name] = u
        return out

    def quant_layers(self) -> list[QuantLayer]:
        return [u.layer for u in self.units().values()] + [self.head]

    def _set_activation_bits(self) -> None:
        """Integer range of every layer's input (docs/arithmetic.md §2), tracked through the graph."""
        cfg = self.cfg
        spike = (0, 1) if cfg.neuron == "lif" else (-1, 1)
        add = lambda r, s: (r[0] + s[0], r[1] + s[1])
        units = self.units()
        rng = (0, 1)                                     # binary event frames
        for u in self.tokenizer:
            u.layer.activation_bits = bits_for_range(*rng)
            rng = spike
        units["rpe"].layer.activation_bits = bits_for_range(*rng)
        x = add(spike, spike)
        self.ranges = {"tokens": x}
        for i, blk in enumerate(self.blocks):
            for u in (blk.q, blk.k, blk.v):
                u.layer.activation_bits = bits_for_range(*x)
            blk.proj.layer.activation_bits = bits_for_range(*spike)
            x = add(x, spike)
            blk.fc1.layer.activation_bits = bits_for_range(*x)
            blk.fc2.layer.activation_bits = bits_for_range(*spike)
            x = add(x, spike)
        self.head.activation_bits = bits_for_range(*x)
        self.ranges["head_input"] = x
        for layer in self.quant_layers():
            if layer.activation_bits > 8:
                raise ValueError(f"depth: residual sums of {layer.name!r} need {layer.activation_bits} bits (max 8)")

    # -- modes ------------------------------------------------------------------------------
    def set_choices(self, choices: dict[str, str] | str | None) -> None:
        """Fix every layer's candidate (dict or one name), or ``None`` for search mode."""
        for layer in self.quant_layers():
            if choices is None:
                layer.choice = None
            else:
                cand = choices if isinstance(choices, str) else choices[layer.name]
                layer.choice = CANDIDATES.index(cand)

    def choices(self) -> dict[str, str]:
        return {layer.name: layer.candidate for layer in self.quant_layers()}

    def init_scales(self) -> None:
        for layer in self.quant_layers():
            layer.init_scales()

    def freeze_bn(self, frozen: bool = True) -> None:
        for u in self.units().values():
            u.bn.frozen = frozen

    def alphas(self) -> list[nn.Parameter]:
        return [layer.alpha for layer in self.quant_layers()]

    def weight_params(self) -> list[nn.Parameter]:
        alpha_ids = {id(a) for a in self.alphas()}
        return [p for p in self.parameters() if id(p) not in alpha_ids]

    def set_samples(self, tau: float, hard: bool, generator=None) -> None:
        for layer in self.quant_layers():
            layer.sample = gumbel_softmax_sample(layer.alpha, tau, hard, generator)

    def hardware_loss(self) -> torch.Tensor:
        return sum(layer.hardware_loss() for layer in self.quant_layers())

    def probabilities(self) -> dict[str, list[float]]:
        return {layer.name: F.softmax(layer.alpha.detach(), 0).tolist() for layer in self.quant_layers()}

    # -- forward ----------------------------------------------------------------------------
    def features(self, frames: torch.Tensor, integer: bool = False) -> torch.Tensor:
        """frames [B, T, C, H, W] (0/1) → residual stream x [T, B, N, D] (integer-valued)."""
        B, T = frames.shape[:2]
        x = frames.transpose(0, 1).reshape(T * B, *frames.shape[2:])
        for u, pool in zip(self.tokenizer, self.cfg.pool_after):
            s = u(x, T, integer)                                    # [T, B, C, H, W]
            s = s.reshape(T * B, *s.shape[2:])
            x = F.max_pool2d(s, 2) if pool else s
        r = self.rpe(x, T, integer).reshape(T * B, *x.shape[1:])
        x = x + r                                                  # [T·B, D, h, w]
        x = x.flatten(2).transpose(1, 2).reshape(T, B, -1, self.cfg.dim)
        for blk in self.blocks:
            x = blk(x, integer)
        return x

    def forward(self, frames: torch.Tensor, integer: bool = False) -> torch.Tensor:
        """Class scores [B, classes]. Integer mode: ``Σ_t Σ_tokens I`` scaled by
        ``s_w / (T·N)`` (the same ordering as the integer readout)."""
        x = self.features(frames, integer)
        T, B, N, D = x.shape
        if integer:
            current = self.head(x, integer=True)                    # [T, B, N, classes]
            return current.sum(dim=(0, 2)) * (self.head.scale(self.head.candidate) / (T * N))
        return self.head(x.mean(dim=2)).mean(dim=0)

    @torch.no_grad()
    def input_rates(self, frames: torch.Tensor, integer: bool = False, batch: int = 256) -> dict[str, float]:
        """Each layer's input spike rate on ``frames``: non-zero input activations per input
        activation and step (the ``paper`` cost's ``r``; the head sees the token mean in float mode)."""
        counts: dict[str, list[float]] = {l.name: [0.0, 0.0] for l in self.quant_layers()}

        def count(mod, args):
            c = counts[mod.name]
            c[0] += float((args[0] != 0).sum())
            c[1] += args[0].numel()
        hooks = [l.register_forward_pre_hook(count) for l in self.quant_layers()]
        was_training = self.training
        self.eval()
        try:
            for i in range(0, len(frames), batch):
                self(frames[i:i + batch].float(), integer=integer)
        finally:
            for h in hooks:
                h.remove()
            self.train(was_training)
        return {name: nz / n if n else 0.0 for name, (nz, n) in counts.items()}

    def activation_bits(self) -> dict[str, int]:
        return {l.name: l.activation_bits for l in self.quant_layers()}

    @torch.no_grad()
    def integer_scores(self, frames: torch.Tensor) -> torch.Tensor:
        """Exact integer class scores Σ_t Σ_tokens I of the integer-mode forward."""
        x = self.features(frames, integer=True)
        return self.head(x, integer=True).sum(dim=(0, 2))


def paper_layers(classes: int = 11, image_size: int = 128) -> list[LayerShape]:
    """Spikformer-2-256 for DVS as in the paper: tokenizer 2→32→64→128→256 (3×3 convs, each
    followed by 2×2 max pooling), 256→256 3×3 relative-position conv on the 8×8 tokens,
    2 blocks of SSA (q, k, v, proj 256×256) and MLP 256→1024→256, head 256→classes."""
    cfg = preset_config("paper", classes=classes, image_size=image_size)
    return SpikingTransformer.layer_shapes_for(cfg)
