"""Classification readout (rtl/readout.py) in amaranth.sim: a head PE and its readout against the
golden layer (scores = Σ_tokens h_T + θ·spikes, label = argmax), with seeded random stalls, and
the readout's constructor check."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.sim import Simulator
from spikehq.golden.config import LayerConfig, LayerWeights, NeuronConfig
from spikehq.golden.reference import run_layer
from spikehq.rtl.pe import SpikingPE
from spikehq.rtl.readout import HeadReadout
from spikehq.sim.amaranth_streams import stream_get, stream_put

STALL = 0.3
END = {"y": 0, "x": 0, "c": 0, "value": 0, "end": 1}


def _linear(tokens, out, *, in_features=6, bits=2, lanes=2, activation_bits=4, threshold=5, T=3,
            neuron=NeuronConfig(type="lif", threshold=5, leak_shift=1, reset="hard")):
    return LayerConfig(name="head", kind="linear", in_channels=in_features, out_channels=out, kernel_size=1, padding=0,
                       height=tokens, width=1, scheme="uniform", bits=bits, activation_bits=activation_bits,
                       lanes=lanes, neuron=neuron, membrane="integer", time_steps=T)


class HeadWithReadout(wiring.Component):
    """A head PE and its readout wired as in the network top (input held back while busy)."""

    def __init__(self, layer, weights):
        self.pe = SpikingPE(layer=layer, weights=weights, probe=True)
        self.readout = HeadReadout(layer=layer, weights=weights, membrane_word=self.pe.membrane_word)
        super().__init__({"i_spikes": wiring.In(stream.Signature(self.pe.in_layout)),
                          "o_result": wiring.Out(stream.Signature(self.readout.layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe, m.submodules.readout = self.pe, self.readout
        m.d.comb += [self.pe.i_spikes.payload.eq(self.i_spikes.payload),      # held back while busy
                     self.pe.i_spikes.valid.eq(self.i_spikes.valid & ~self.readout.busy),
                     self.i_spikes.ready.eq(self.pe.i_spikes.ready & ~self.readout.busy)]
        wiring.connect(m, self.pe.o_spikes, self.readout.i_spikes)
        m.d.comb += [self.pe.membrane_probe.addr.eq(self.readout.membrane_probe.addr),
                     self.readout.membrane_probe.data.eq(self.pe.membrane_probe.data)]
        wiring.connect(m, self.readout.o_result, wiring.flipped(self.o_result))
        return m


def head_case(seed, N=5, F=6, K=6, T=3, theta=9):
    """A soft-reset, leak-free head layer (lanes 3) with random 2-bit weights."""
    torch.manual_seed(seed)
    layer = _linear(N, K, in_features=F, lanes=3, T=T,
                    neuron=NeuronConfig(type="lif", threshold=theta, leak_shift=0, reset="soft"))
    codes = torch.randint(0, 4, (K, F, 1, 1)).numpy().astype(np.int64)
    weights = LayerWeights(codes=codes, bias=np.zeros(K, dtype=np.int64), threshold=np.full(K, theta, dtype=np.int64))
    return layer, weights


def golden_result(layer, weights, x):
    """(scores, label) of one sample [T, N, 1, F]: Σ_tokens h_T + θ·spikes, first argmax."""
    trace = run_layer(layer, weights, x)
    theta = torch.as_tensor(weights.threshold)            # per class
    scores = (trace.membranes[-1] + theta * trace.spikes.sum(dim=0)).sum(dim=(0, 1))
    return scores.tolist(), int(scores.argmax())


def sample_tokens(x, rng):
    """Stream tokens of one sample [T, N, 1, F]: each step's events shuffled, then an end token."""
    tokens = []
    for t in range(x.shape[0]):
        ev = [{"y": n, "x": 0, "c": f, "value": int(x[t, n, 0, f]), "end": 0} for n, _, f in x[t].nonzero().tolist()]
        rng.shuffle(ev)
        tokens += ev + [END]
    return tokens


@pytest.mark.parametrize("seed", [7, 8])
def test_readout_scores_and_label_from_head_pe(seed):
    """Head PE + readout, two samples back to back: scores = Σ_tokens h_T + θ·spikes, label = argmax."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    N, F, T = 5, 6, 3
    layer, weights = head_case(seed, N=N, F=F, T=T)
    dut = HeadWithReadout(layer, weights)
    samples = [torch.randint(-8, 8, (T, N, 1, F)) * torch.randint(0, 2, (T, N, 1, F)) for _ in range(2)]
    samples[1][:, :2] = 7                                  # largest activations on some tokens
    results = []

    async def producer(ctx):
        tokens = [token for x in samples for token in sample_tokens(x, rng)]
        in_rng = random.Random(seed + 1)
        for token in tokens:
            await stream_put(ctx, dut.i_spikes, token, rng=in_rng, stall=STALL)

    async def consumer(ctx):
        out_rng = random.Random(seed + 2)
        while len(results) < len(samples):
            payload, _ = await stream_get(ctx, dut.o_result, rng=out_rng, stall=STALL)
            results.append(([int(s) for s in payload.scores], int(payload.label)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    for x, result in zip(samples, results, strict=True):
        assert result == golden_result(layer, weights, x)


@pytest.mark.parametrize("neuron,bias", [
    (NeuronConfig(type="lif", threshold=5, leak_shift=1, reset="hard"), 0),
    (NeuronConfig(type="lif", threshold=5, leak_shift=0, reset="soft"), 2)])
def test_readout_refuses_a_head_it_cannot_read(neuron, bias):
    layer = _linear(4, 4, neuron=neuron)
    weights = LayerWeights(codes=np.zeros((4, 6, 1, 1), dtype=np.int64), bias=np.full(4, bias, dtype=np.int64),
                           threshold=np.full(4, 5, dtype=np.int64))
    membrane_word = SpikingPE(layer=layer, weights=weights).membrane_word
    with pytest.raises(ValueError, match=r"^layer 'head': the readout needs the exported head neuron "
                                         r"\(binary LIF, soft reset, leak_shift 0, integer membrane, zero bias\)$"):
        HeadReadout(layer=layer, weights=weights, membrane_word=membrane_word)
