"""Shared test vectors: the same (case parameters, seed) drive the amaranth.sim tests and the
cocotb/Verilator tests, and both require exact equality with the golden model.

A :class:`Case` is a layer config, its integer weights (random, plus two extreme channels:
channel 0 holds the most negative weight everywhere, channel 1 the most positive), and a list
of samples covering the corners: random spikes, silence, every input firing at the largest
positive and at the most negative activation.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np
import torch

from ..golden import codes
from ..golden.config import LayerConfig, LayerWeights, config_from_dict
from ..golden.reference import LayerTrace, run_layer

__all__ = ["Case", "make_case", "events_of_step", "expected_events", "matrix", "CaseParams"]


@dataclass(frozen=True)
class CaseParams:
    scheme: str = "pot"
    bits: int = 4
    activation_bits: int = 1
    neuron: str = "lif"
    membrane: str = "integer"
    kind: str = "linear"
    reset: str = "hard"
    leak_shift: int = 1
    lanes: int = 4
    seed: int = 1
    with_weights: bool = True

    @property
    def name(self) -> str:
        a = "bin" if self.activation_bits == 1 else f"a{self.activation_bits}"
        return (f"{self.kind}_{self.scheme}{self.bits}_{a}_{self.neuron}_{self.membrane}"
                f"_{self.reset}_s{self.leak_shift}_l{self.lanes}_seed{self.seed}"
                + ("" if self.with_weights else "_wport"))


@dataclass
class Case:
    params: CaseParams
    layer: LayerConfig
    weights: LayerWeights
    samples: list[torch.Tensor]          # each [T, H, W, C]
    traces: list[LayerTrace]             # golden output per sample


def _layer_dict(p: CaseParams, threshold: int) -> dict:
    if p.kind == "linear":
        geometry = {"in_features": 12, "out_features": 8, "tokens": 2}
    elif p.kind == "conv2d":
        geometry = {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1, "height": 4, "width": 3}
    else:  # conv2d without padding
        geometry = {"in_channels": 2, "out_channels": 4, "kernel_size": 2, "padding": 0, "height": 3, "width": 3}
    return {"name": "pe", "kind": "linear" if p.kind == "linear" else "conv2d", **geometry,
            "scheme": p.scheme, "bits": p.bits, "activation_bits": p.activation_bits, "lanes": p.lanes,
            "neuron": {"type": p.neuron, "threshold": threshold, "leak_shift": p.leak_shift, "reset": p.reset},
            "membrane": p.membrane}


def make_case(p: CaseParams, time_steps: int = 4, random_samples: int = 2) -> Case:
    rng = np.random.default_rng(p.seed)
    probe = config_from_dict({"format": "spikehq-searched", "version": 1, "name": "probe",
                              "time_steps": time_steps, "layers": [_layer_dict(p, 1)]})
    layer = probe.layers[0]
    widths = layer.widths()
    # Thresholds around the size of a typical current so that neurons fire now and then.
    typical = max(2, int(np.sqrt(layer.fan_in / 3) * widths.weight_max_abs * widths.activation_max_abs / 2))
    layer = config_from_dict({"format": "spikehq-searched", "version": 1, "name": "case",
                              "time_steps": time_steps, "layers": [_layer_dict(p, typical)]}).layers[0]
    O, C, k = layer.out_channels, layer.in_channels, layer.kernel_size
    levels = codes.levels(p.scheme, p.bits)
    values = rng.choice(levels, size=(O, C, k, k))
    values[0] = levels.min()
    values[1] = levels.max()
    if p.with_weights:
        bias = rng.integers(-typical, typical + 1, size=O)
        threshold = rng.integers(1, 2 * typical + 1, size=O)
        threshold[:2] = typical
    else:  # the write-port variant has no parameter file: bias 0, the scalar threshold
        bias, threshold = np.zeros(O, dtype=np.int64), np.full(O, typical)
    weights = LayerWeights(codes=codes.encode(p.scheme, p.bits, values), bias=bias, threshold=threshold)

    a = layer.activation_bits
    lo, hi = codes.activation_range(a)
    shape = (time_steps, layer.height, layer.width, C)
    samples = []
    for density in rng.uniform(0.15, 0.6, size=random_samples):
        mask = rng.random(shape) < density
        samples.append(torch.from_numpy(np.where(mask, rng.integers(lo, hi + 1, size=shape), 0)))
    samples.append(torch.zeros(shape, dtype=torch.int64))             # silence
    samples.append(torch.full(shape, hi, dtype=torch.int64))          # every input, largest value
    if a > 1:
        samples.append(torch.full(shape, lo, dtype=torch.int64))      # every input, most negative
    traces = [run_layer(layer, weights, x) for x in samples]
    return Case(params=p, layer=layer, weights=weights, samples=samples, traces=traces)


def events_of_step(frame: torch.Tensor, rng: random.Random | None = None) -> list[tuple[int, int, int, int]]:
    """Non-zero activations of one step [H, W, C] as (y, x, c, value); shuffled when ``rng`` given."""
    nz = torch.nonzero(frame).tolist()
    events = [(y, x, c, int(frame[y, x, c])) for y, x, c in nz]
    if rng is not None:
        rng.shuffle(events)
    return events


def expected_events(spikes: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """Output events of one step [H', W', O] in the order the PE emits them (ascending index)."""
    return [(y, x, o, int(spikes[y, x, o])) for y, x, o in torch.nonzero(spikes).tolist()]


def matrix(seed: int = 1) -> list[CaseParams]:
    """The 32-way matrix: scheme × bits × activation × neuron × membrane; the remaining knobs
    (kind, reset, leak, lanes) rotate across it so every value is covered."""
    cases = []
    combos = itertools.product(("pot", "uniform"), (2, 4), (1, 4), ("lif", "ternary"), ("integer", "ternary"))
    for n, (scheme, bits, act, neuron, membrane) in enumerate(combos):
        kind = ("linear", "conv2d", "conv2d_nopad")[n % 3]
        cases.append(CaseParams(
            scheme=scheme, bits=bits, activation_bits=act if act == 1 else (4, 8)[(n // 3) % 2],
            neuron=neuron, membrane=membrane, kind=kind, reset=("hard", "soft")[(n // 3) % 2],
            leak_shift=(1, 0, 2)[(n // 4) % 3],
            lanes=(4, 2, 1, 8)[(n // 3) % 4] if kind == "linear" else (4, 2, 1)[(n // 3) % 3],
            seed=seed + n))
    return cases
