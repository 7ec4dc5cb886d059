"""Bit-exact integer forward of a whole network: an exported spiking transformer, or a
feed-forward graph imported from NIR (layers, sum pooling, flatten, residual adds; §14).

Built layer by layer from :func:`golden.reference.synaptic_current` and
:func:`golden.reference.neuron_step` (docs/arithmetic.md), with the glue between layers in
exact integer operations: 2×2 max pooling of spikes, residual additions, the attention product
``Q·(Kᵀ·V)`` per head (int64 matmul) feeding an integer attention neuron (both in
:mod:`golden.attention`), and the readout (the head's accumulated current ``h_T + θ·Σ_t S_t`` of
its soft-reset, leak-free neuron, summed over tokens, argmax). The graph is the config's
:class:`golden.config.NetworkGraph` (``metadata.network`` of searched.json, written by
:mod:`spikehq.search.export`).

Tensors are channel-last as in the reference: a conv layer's input is ``[T, B, H, W, C]``, a
linear layer's ``[T, B, tokens, 1, C]``. ``run(..., dump=True)`` returns every layer's integer
input and output spikes, so each layer can be replayed alone with
:func:`golden.reference.run_layer` (one sample ``[:, b]``) — which is what the RTL is driven with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .attention import attention_current, attention_neuron
from .codes import activation_range
from .config import ConfigError, LayerWeights, NetworkConfig, NetworkGraph, load_config, load_weights
from .reference import neuron_step, synaptic_current

__all__ = ["IntegerNetwork", "load_network", "network_from_config"]


@dataclass
class IntegerNetwork:
    config: NetworkConfig
    weights: dict[str, LayerWeights]

    @property
    def graph(self) -> NetworkGraph:
        return self.config.graph

    # -- one layer over a batch -------------------------------------------------------------
    def _layer(self, name: str, x: torch.Tensor, trace: dict | None, *, final_state: bool = False):
        layer = self.config.layer(name)
        w = self.weights[name]
        T, B = x.shape[:2]
        a = layer.activation_bits
        lo, hi = activation_range(a)
        if x.numel() and (x.min() < lo or x.max() > hi):
            raise ValueError(f"layer {name!r}: {a}-bit activations must lie in [{lo}, {hi}], "
                             f"got [{int(x.min())}, {int(x.max())}]")
        current = synaptic_current(layer, w, x.reshape(T * B, *x.shape[2:]))
        current = current.reshape(T, B, *current.shape[1:])
        bias, threshold = torch.from_numpy(w.bias.copy()), torch.from_numpy(w.threshold.copy())
        bound = layer.widths(w).membrane_bound
        state = torch.zeros_like(current[0])
        spikes = []
        for t in range(T):
            s, state, u = neuron_step(layer, state, current[t], bias, threshold, first_step=(t == 0))
            if u.numel() and u.abs().max() > bound:
                raise AssertionError(f"layer {name!r}: |u| exceeded the derived bound {bound}")
            spikes.append(s)
        spikes = torch.stack(spikes)
        if trace is not None:
            trace[name] = {"inputs": x, "spikes": spikes}
        return (spikes, state) if final_state else spikes

    # -- the network -------------------------------------------------------------------------
    def input_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` [..., T, C, H, W] reshaped to the network's input [C', H', W'] when they
        hold as many values (a feed-forward graph whose input is flattened event frames: the
        torch flatten order of [C, H, W]); otherwise unchanged."""
        graph = self.graph
        if graph.architecture != "feedforward" or tuple(frames.shape[-3:]) == graph.input_shape:
            return frames
        C, H, W = graph.input_shape
        if frames.dim() < 4 or frames.shape[-3:].numel() != C * H * W:
            return frames
        return frames.reshape(*frames.shape[:-3], C, H, W)

    def run(self, frames: torch.Tensor, dump: bool = False):
        """frames int [B, T, C, H, W] (0/1) → (scores int64 [B, classes], trace or None);
        feed-forward graphs take frames of as many values as their input (:meth:`input_frames`)."""
        T = self.config.time_steps
        frames = self.input_frames(frames)
        if frames.dim() != 5 or frames.shape[1] != T:
            raise ValueError(f"frames: expected [B, {T}, C, H, W], got {list(frames.shape)}")
        if frames.dtype.is_floating_point:
            frames = frames.round()
        trace = {} if dump else None
        x = frames.to(torch.int64).permute(1, 0, 3, 4, 2)            # [T, B, H, W, C]
        if self.graph.architecture == "feedforward":
            return self._feedforward(x, trace), trace
        return self._spikformer(x, trace), trace

    def _feedforward(self, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        """The nodes in order (§14); scores = the output layer's spikes summed over steps and pixels."""
        graph = self.graph
        C, H, W = graph.input_shape
        if tuple(x.shape[2:]) != (H, W, C):
            raise ValueError(f"frames: expected [B, T, {C}, {H}, {W}], got C, H, W = {x.shape[4]}, {x.shape[2]}, {x.shape[3]}")
        values = {"input": x}
        for node in graph.nodes:
            a = values[node.inputs[0]]
            Tt, B, h, w, c = a.shape
            if node.op == "layer":
                values[node.name] = self._layer(node.name, a, trace)
            elif node.op == "sumpool":
                k = node.kernel
                values[node.name] = a.reshape(Tt, B, h // k, k, w // k, k, c).sum(dim=(3, 5))
            elif node.op == "flatten":                                  # (c, y, x) order, as torch's flatten
                values[node.name] = a.permute(0, 1, 4, 2, 3).reshape(Tt, B, 1, 1, c * h * w)
            else:
                values[node.name] = a + values[node.inputs[1]]
        return values[graph.output].sum(dim=(0, 2, 3))                 # [B, classes]

    def _spikformer(self, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        graph = self.graph
        for i, pool in enumerate(graph.pool_after):
            x = self._layer(f"tok{i}", x, trace)
            if pool:
                Tt, B, H, W, C = x.shape
                x = x.reshape(Tt, B, H // 2, 2, W // 2, 2, C).amax(dim=(3, 5))
        x = x + self._layer("rpe", x, trace)
        Tt, B, h, w, D = x.shape
        x = x.reshape(Tt, B, h * w, 1, D)                               # tokens, channel-last
        heads = graph.attention.heads
        split = lambda z: z.reshape(Tt, B, h * w, heads, D // heads).transpose(2, 3)   # [T, B, heads, N, d]
        for b in range(graph.depth):
            q, k, v = (self._layer(f"b{b}_{n}", x, trace).reshape(Tt, B, h * w, D) for n in ("q", "k", "v"))
            a = attention_current(q, k, v, heads)                       # [T, B, N, D]
            s = attention_neuron(a, graph.attention, self.config.time_steps)
            if trace is not None:
                trace[f"b{b}_attn"] = {"inputs": split(a), "spikes": split(s)}
            s = s.reshape(Tt, B, h * w, 1, D)
            x = x + self._layer(f"b{b}_proj", s, trace)
            hid = self._layer(f"b{b}_fc1", x, trace)
            x = x + self._layer(f"b{b}_fc2", hid, trace)
        spikes, membrane = self._layer("head", x, trace, final_state=True)
        theta = torch.from_numpy(self.weights["head"].threshold.copy())
        # soft reset, no leak, no bias: Σ_t I_t = h_T + θ·Σ_t S_t (the membrane alone if it never fired)
        return (membrane + theta * spikes.sum(dim=0)).sum(dim=(1, 2))  # over tokens: [B, classes]

    def input_events(self, frames: torch.Tensor) -> dict[str, float]:
        """Mean input events (non-zero activations) per sample of every layer on ``frames``:
        what the balanced lanes policy weighs layers by (``input_events`` in searched.json)."""
        _, trace = self.run(frames, dump=True)
        n = len(frames)
        return {layer.name: float((trace[layer.name]["inputs"] != 0).sum()) / n for layer in self.config.layers}

    def engine_activity(self, frames: torch.Tensor, batch_size: int = 64) -> dict[str, dict]:
        """Per engine (every layer and every block's attention neuron ``b<i>_attn``), over
        ``frames``: ``spikes`` (total non-zero outputs), ``spike_rate`` (per output neuron and
        step), ``input_rate`` (non-zero inputs per input and step). The head's outputs are its
        readout, not spikes (its threshold is out of reach by design)."""
        sums: dict[str, list[int]] = {}
        for i in range(0, len(frames), batch_size):
            _, trace = self.run(frames[i:i + batch_size], dump=True)
            for name, t in trace.items():
                c = sums.setdefault(name, [0, 0, 0, 0])
                c[0] += int((t["spikes"] != 0).sum())
                c[1] += t["spikes"].numel()
                c[2] += int((t["inputs"] != 0).sum())
                c[3] += t["inputs"].numel()
        return {name: {"spikes": c[0], "spike_rate": c[0] / max(c[1], 1), "input_rate": c[2] / max(c[3], 1)}
                for name, c in sums.items()}

    def predict(self, frames: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        out = [self.run(frames[i:i + batch_size])[0].argmax(dim=1) for i in range(0, len(frames), batch_size)]
        return torch.cat(out)


def load_network(path: str | Path) -> IntegerNetwork:
    """Load searched.json and every layer's weights; refuses fp32 layers and unknown graphs."""
    return network_from_config(load_config(path))


def network_from_config(config: NetworkConfig) -> IntegerNetwork:
    """The integer network of a loaded config (its weights files read); refuses fp32 layers and
    unknown graphs."""
    where = config.where
    if config.graph is None:
        raise ConfigError(f"{where}: metadata.network: missing (the graph written by spikehq.search.export)")
    weights = {}
    for layer in config.layers:
        if not layer.is_hardware:
            raise ConfigError(f"{where}: layer {layer.name!r}: scheme fp32 has no integer reference")
        w = load_weights(layer)
        if w is None:
            raise ConfigError(f"{where}: layer {layer.name!r}: no weights file")
        weights[layer.name] = w
    return IntegerNetwork(config, weights)
