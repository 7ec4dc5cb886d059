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

__all__ = ["Case", "make_case", "events_of_step", "expected_events", "matrix", "binary_membrane_cases",
           "relu_key_cases", "spatial_prune_cases", "CaseParams", "random_params", "case_cycles", "case_events"]


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
    # geometry; 0 (padding -1) = the kind's small default (see _layer_dict)
    in_channels: int = 0
    out_channels: int = 0
    kernel_size: int = 0
    padding: int = -1
    height: int = 0
    width: int = 0
    random_samples: int = 2
    key_bits: int = 2               # output bits of a relu key (neuron "relu")
    spatial_prune_k: int = 0        # SpQuant spatial pruning's k (conv layers; 0 = off)

    @property
    def name(self) -> str:
        a = "bin" if self.activation_bits == 1 else f"a{self.activation_bits}"
        geometry = ""
        if self.in_channels:
            geometry = (f"_c{self.in_channels}o{self.out_channels}k{self.kernel_size}p{self.padding}"
                        f"_{self.height}x{self.width}")
        neuron = f"relu{self.key_bits}" if self.neuron == "relu" else self.neuron
        return (f"{self.kind}_{self.scheme}{self.bits}_{a}_{neuron}_{self.membrane}"
                f"_{self.reset}_s{self.leak_shift}_l{self.lanes}{geometry}_seed{self.seed}"
                + (f"_prune{self.spatial_prune_k}" if self.spatial_prune_k else "")
                + ("" if self.with_weights else "_wport"))


@dataclass
class Case:
    params: CaseParams
    layer: LayerConfig
    weights: LayerWeights
    samples: list[torch.Tensor]          # each [T, H, W, C]
    traces: list[LayerTrace]             # golden output per sample


def _layer_dict(p: CaseParams, threshold: int) -> dict:
    if p.in_channels and p.kind == "linear":
        geometry = {"in_features": p.in_channels, "out_features": p.out_channels, "tokens": p.height}
    elif p.in_channels:
        geometry = {"in_channels": p.in_channels, "out_channels": p.out_channels, "kernel_size": p.kernel_size,
                    "padding": p.padding, "height": p.height, "width": p.width}
    elif p.kind == "linear":
        geometry = {"in_features": 12, "out_features": 8, "tokens": 2}
    elif p.kind == "conv2d":
        geometry = {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1, "height": 4, "width": 3}
    else:  # conv2d without padding
        geometry = {"in_channels": 2, "out_channels": 4, "kernel_size": 2, "padding": 0, "height": 3, "width": 3}
    return {"name": "pe", "kind": "linear" if p.kind == "linear" else "conv2d", **geometry,
            "scheme": p.scheme, "bits": p.bits, "activation_bits": p.activation_bits, "lanes": p.lanes,
            "neuron": {"type": p.neuron, "threshold": threshold, "leak_shift": p.leak_shift, "reset": p.reset,
                       **({"bits": p.key_bits} if p.neuron == "relu" else {})},
            "membrane": p.membrane, **({"spatial_prune_k": p.spatial_prune_k} if p.spatial_prune_k else {})}


def make_case(p: CaseParams, time_steps: int = 4) -> Case:
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
    for density in rng.uniform(0.15, 0.6, size=p.random_samples):
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
    """The 32-way matrix: scheme × bits × activation × neuron × membrane (integer, ternary); the
    remaining knobs (kind, reset, leak, lanes) rotate across it so every value is covered. Then
    the binary-membrane cases (:func:`binary_membrane_cases`)."""
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
    return cases + binary_membrane_cases(seed + len(cases))


def binary_membrane_cases(seed: int = 33) -> list[CaseParams]:
    """SpQuant's binary membrane (binary LIF only, docs/arithmetic.md §6): both schemes and
    bit widths, binary and multi-bit activations, both resets, every kind, light to heavy leak."""
    rows = (("pot", 2, 1, "linear", "hard", 1, 4), ("pot", 4, 4, "conv2d", "soft", 0, 2),
            ("uniform", 2, 8, "conv2d_nopad", "soft", 2, 1), ("uniform", 4, 1, "conv2d", "hard", 16, 4))
    return [CaseParams(scheme=scheme, bits=bits, activation_bits=act, neuron="lif", membrane="binary", kind=kind,
                       reset=reset, leak_shift=leak, lanes=lanes, seed=seed + n)
            for n, (scheme, bits, act, kind, reset, leak, lanes) in enumerate(rows)]


def relu_key_cases(seed: int = 201) -> list[CaseParams]:
    """A2OS2A's integer ReLU key (neuron ``relu``, docs/arithmetic.md §4) on every key width,
    both schemes, binary and multi-bit inputs, linear and conv, leaks and membranes that a
    stateless key must ignore."""
    return [
        CaseParams(scheme="pot", bits=2, activation_bits=3, neuron="relu", key_bits=2, kind="linear",
                   leak_shift=1, lanes=4, seed=seed),
        CaseParams(scheme="uniform", bits=4, activation_bits=1, neuron="relu", key_bits=1, kind="conv2d",
                   leak_shift=0, lanes=2, seed=seed + 1),
        CaseParams(scheme="uniform", bits=2, activation_bits=4, neuron="relu", key_bits=3, kind="linear",
                   membrane="ternary", reset="soft", leak_shift=2, lanes=8, seed=seed + 2),
        CaseParams(scheme="pot", bits=4, activation_bits=8, neuron="relu", key_bits=4, kind="conv2d_nopad",
                   leak_shift=16, lanes=1, seed=seed + 3),
    ]


def spatial_prune_cases(seed: int = 301) -> list[CaseParams]:
    """SpQuant spatial pruning (docs/arithmetic.md §6.1): k from 1 to a third of the positions,
    1 to 4 lane groups per position, every membrane, both neuron types and resets. Few output
    channels, so counts tie often."""
    return [
        CaseParams(scheme="pot", bits=4, activation_bits=1, kind="conv2d", lanes=2, spatial_prune_k=4, seed=seed),
        CaseParams(scheme="uniform", bits=2, activation_bits=4, neuron="ternary", membrane="ternary", kind="conv2d",
                   reset="soft", leak_shift=0, lanes=1, spatial_prune_k=5, seed=seed + 1),
        CaseParams(scheme="pot", bits=2, activation_bits=8, membrane="binary", kind="conv2d_nopad", leak_shift=2,
                   lanes=4, spatial_prune_k=1, seed=seed + 2),
        CaseParams(scheme="uniform", bits=4, activation_bits=1, neuron="ternary", kind="conv2d", in_channels=3,
                   out_channels=6, kernel_size=3, padding=1, height=6, width=5, lanes=3, spatial_prune_k=10,
                   seed=seed + 3),
    ]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def case_events(p: CaseParams, time_steps: int = 4) -> int:
    """Upper estimate of the input events a case sends (the testbench's cost: one cocotb
    transaction each): random samples at density ≤ 0.6, the all-firing corner samples."""
    layer = make_layer(p, 1)
    return int(layer.num_inputs * time_steps * (p.random_samples * 0.6 + 1 + (layer.activation_bits > 1)))


def case_cycles(p: CaseParams, time_steps: int = 4) -> int:
    """Upper estimate of the PE cycles a case takes (every sample as dense as the densest):
    k²·G cycles per input event plus a membrane read-out per step (docs/arithmetic.md §7)."""
    layer = make_layer(p, 1)
    events = layer.num_inputs * (p.random_samples * 0.6 + 1 + (layer.activation_bits > 1))
    per_step = layer.out_height * layer.out_width * layer.groups
    samples = p.random_samples + 1 + (layer.activation_bits > 1)
    return int(events * time_steps * layer.kernel_size ** 2 * layer.groups + samples * time_steps * 4 * per_step)


def make_layer(p: CaseParams, threshold: int, time_steps: int = 4) -> LayerConfig:
    """The validated layer config of a case (raises ConfigError for an invalid combination)."""
    return config_from_dict({"format": "spikehq-searched", "version": 1, "name": "case",
                             "time_steps": time_steps, "layers": [_layer_dict(p, threshold)]}).layers[0]


def random_params(seed: int, *, max_cycles: int = 400_000, max_events: int = 30_000) -> CaseParams:
    """A random valid PE configuration: any scheme, bits, activation width, neuron, membrane,
    reset and leak, with random geometry (maps up to 32×32, odd sizes, fan-in up to ~600,
    kernels 1–5 with any legal padding) and lanes dividing the output channels; redrawn until
    :func:`case_cycles` is at most ``max_cycles`` and :func:`case_events` at most ``max_events``
    (so one case simulates in about a minute)."""
    rng = random.Random(seed)
    while True:
        kind = rng.choice(("linear", "conv2d"))
        scheme = rng.choice(("pot", "uniform"))
        neuron = rng.choice(("lif", "ternary"))
        base = dict(scheme=scheme, bits=rng.choice((2, 4)), activation_bits=rng.choice((1, 1, 2, 3, 4, 5, 8)),
                    neuron=neuron, membrane=rng.choice(("integer", "ternary")), reset=rng.choice(("hard", "soft")),
                    leak_shift=rng.choice((0, 1, 2, 3, 5, 16)), seed=seed, random_samples=rng.choice((1, 2)))
        if kind == "linear":
            c_in = rng.choice((rng.randint(1, 64), rng.randint(65, 300), rng.randint(500, 640)))
            out = rng.randint(1, 24)
            geometry = dict(kind="linear", in_channels=c_in, out_channels=out, kernel_size=1, padding=0,
                            height=rng.randint(1, 40), width=1)
        else:
            k = rng.choice((1, 2, 3, 3, 5))
            c_in = rng.choice((rng.randint(1, 4), rng.randint(5, 24), rng.randint(57, 70)))
            out = rng.randint(1, 16)
            h, w = rng.randint(k, 32), rng.randint(k, 32)
            geometry = dict(kind="conv2d", in_channels=c_in, out_channels=out, kernel_size=k,
                            padding=rng.randint(0, k - 1), height=h, width=w)
        params = CaseParams(**base, **geometry, lanes=rng.choice(_divisors(geometry["out_channels"])))
        if case_cycles(params) <= max_cycles and case_events(params) <= max_events:
            return params
