"""Stream glue of the network top (rtl/glue.py, rtl/readout.py) in amaranth.sim against the
integer operations of golden/network.py, with seeded random valid/ready stalls."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch
from amaranth import signed, unsigned
from amaranth.sim import Simulator

from spikehq.golden.config import LayerConfig, LayerWeights, NeuronConfig
from spikehq.golden.reference import run_layer
from spikehq.rtl.glue import EventFork, ResidualAdd, SpikePool2x2
from spikehq.rtl.readout import HeadReadout
from spikehq.rtl.pe import SpikingPE

STALL = 0.3


def _end(payload_fields=("y", "x", "c", "value")):
    return {**{f: 0 for f in payload_fields}, "end": 1}


async def _send(ctx, port, tokens, rng):
    for payload in tokens:
        while rng.random() < STALL:
            await ctx.tick()
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def _receive(ctx, port, rng, ends: int, fields=("y", "x", "c", "value")):
    """Collect tokens until ``ends`` end tokens: a list of per-step event lists."""
    steps, events = [], []
    while len(steps) < ends:
        ready = rng.random() >= STALL
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        if valid and ready:
            if payload.end:
                steps.append(events)
                events = []
            else:
                events.append(tuple(int(getattr(payload, f)) for f in fields))
    ctx.set(port.ready, 0)
    return steps


def _run(dut, *testbenches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("seed", [1, 2])
def test_fork_delivers_every_token_to_every_output_in_order(seed):
    print(f"seed {seed}")
    rng = random.Random(seed)
    layout = SpikingPE(layer=_linear(4, 8), weights=None).in_layout
    dut = EventFork(layout, 3)
    tokens = [{"y": rng.randrange(4), "x": 0, "c": rng.randrange(4), "value": rng.randrange(-4, 4), "end": 0}
              for _ in range(40)] + [_end()]
    got = {}

    async def producer(ctx):
        await _send(ctx, dut.i_events, tokens, random.Random(seed + 10))

    def consumer(i):
        async def tb(ctx):
            got[i] = await _receive(ctx, dut.o_events[i], random.Random(seed + 20 + i), ends=1)
        return tb

    _run(dut, producer, *(consumer(i) for i in range(3)))
    want = [(t["y"], t["x"], t["c"], t["value"]) for t in tokens[:-1]]
    assert all(got[i] == [want] for i in range(3))


@pytest.mark.parametrize("seed", [3, 4])
def test_pool_is_golden_max_pool_per_step(seed):
    print(f"seed {seed}")
    rng = random.Random(seed)
    H, W, C, T = 4, 6, 5, 3
    dut = SpikePool2x2(height=H, width=W, channels=C)
    maps = (torch.rand(T, H, W, C, generator=torch.Generator().manual_seed(seed)) < 0.3).to(torch.int64)
    maps[1] = 1                                           # every input firing
    maps[2] = 0                                           # silence
    expected = maps.reshape(T, H // 2, 2, W // 2, 2, C).amax(dim=(2, 4))
    tokens = []
    for t in range(T):
        events = [{"y": y, "x": x, "c": c, "value": 1, "end": 0} for y, x, c in maps[t].nonzero().tolist()]
        rng.shuffle(events)
        tokens += events + [_end()]
    got = {}

    async def producer(ctx):
        await _send(ctx, dut.i_spikes, tokens, random.Random(seed + 1))

    async def consumer(ctx):
        got["steps"] = await _receive(ctx, dut.o_spikes, random.Random(seed + 2), ends=T)

    _run(dut, producer, consumer)
    for t in range(T):
        events = got["steps"][t]
        assert len(events) == len(set(events)), "a pooled pixel was sent twice in one step"
        assert sorted(events) == sorted((y, x, c, 1) for y, x, c in expected[t].nonzero().tolist())


@pytest.mark.parametrize("seed, skip_bits, branch", [(5, 3, "lif"), (6, 4, "ternary")])
def test_residual_add_is_the_integer_sum(seed, skip_bits, branch):
    print(f"seed {seed}")
    rng = random.Random(seed)
    N, C, T = 6, 8, 3
    lo = -(2 ** (skip_bits - 1)) + 1
    hi = 2 ** (skip_bits - 1) - 2
    skip = torch.randint(lo, hi + 1, (T, N, C), generator=torch.Generator().manual_seed(seed))
    skip[skip.abs() > 1] *= torch.randint(0, 2, skip[skip.abs() > 1].shape)   # sparse
    if branch == "lif":
        br = torch.randint(0, 2, (T, N, C))
    else:
        br = torch.randint(-1, 2, (T, N, C))
    skip[2] = 0                                           # a step where only the branch fires
    out_bits = skip_bits + 1
    dut = ResidualAdd(height=N, width=1, channels=C, skip_shape=signed(skip_bits),
                      branch_shape=signed(2) if branch == "ternary" else unsigned(1), out_shape=signed(out_bits))

    def stream(x):
        tokens = []
        for t in range(T):
            ev = [{"y": n, "x": 0, "c": c, "value": int(x[t, n, c]), "end": 0} for n, c in x[t].nonzero().tolist()]
            rng.shuffle(ev)
            tokens += ev + [_end()]
        return tokens

    got = {}

    async def skip_tb(ctx):
        await _send(ctx, dut.i_skip, stream(skip), random.Random(seed + 1))

    async def branch_tb(ctx):
        await _send(ctx, dut.i_branch, stream(br), random.Random(seed + 2))

    async def consumer(ctx):
        got["steps"] = await _receive(ctx, dut.o_sum, random.Random(seed + 3), ends=T)

    _run(dut, skip_tb, branch_tb, consumer)
    total = skip + br
    for t in range(T):
        want = sorted((n, 0, c, int(total[t, n, c])) for n, c in total[t].nonzero().tolist())
        assert sorted(got["steps"][t]) == want
        assert len(got["steps"][t]) == len(set(got["steps"][t]))


def _linear(tokens, out, *, in_features=6, bits=2, lanes=2, activation_bits=4, threshold=5, T=3,
            neuron=NeuronConfig(type="lif", threshold=5, leak_shift=1, reset="hard")):
    return LayerConfig(name="head", kind="linear", in_channels=in_features, out_channels=out, kernel_size=1, padding=0,
                       height=tokens, width=1, scheme="uniform", bits=bits, activation_bits=activation_bits,
                       lanes=lanes, neuron=neuron, membrane="integer", time_steps=T)


@pytest.mark.parametrize("seed", [7, 8])
def test_readout_scores_and_label_from_head_pe(seed):
    """Head PE + readout, two samples back to back: scores = Σ_tokens h_T + θ·spikes, label = argmax."""
    print(f"seed {seed}")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    N, F, K, T = 5, 6, 6, 3
    theta = 9
    layer = _linear(N, K, in_features=F, lanes=3, T=T,
                    neuron=NeuronConfig(type="lif", threshold=theta, leak_shift=0, reset="soft"))
    codes = torch.randint(0, 4, (K, F, 1, 1)).numpy().astype(np.int64)
    weights = LayerWeights(codes=codes, bias=np.zeros(K, dtype=np.int64), threshold=np.full(K, theta, dtype=np.int64))
    from amaranth.hdl import Module
    from amaranth.lib import stream, wiring

    class Top(wiring.Component):
        def __init__(self):
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

    dut = Top()
    samples = [torch.randint(-8, 8, (T, N, 1, F)) * torch.randint(0, 2, (T, N, 1, F)) for _ in range(2)]
    samples[1][:, :2] = 7                                  # largest activations on some tokens
    results = []

    async def producer(ctx):
        tokens = []
        for x in samples:
            for t in range(T):
                ev = [{"y": n, "x": 0, "c": f, "value": int(x[t, n, 0, f]), "end": 0}
                      for n, _, f in x[t].nonzero().tolist()]
                rng.shuffle(ev)
                tokens += ev + [_end()]
        await _send(ctx, dut.i_spikes, tokens, random.Random(seed + 1))

    async def consumer(ctx):
        out_rng = random.Random(seed + 2)
        while len(results) < len(samples):
            ready = out_rng.random() >= STALL
            ctx.set(dut.o_result.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o_result.valid, dut.o_result.payload)
            if valid and ready:
                results.append(([int(s) for s in payload.scores], int(payload.label)))

    _run(dut, producer, consumer)
    for x, (scores, label) in zip(samples, results, strict=True):
        trace = run_layer(layer, weights, x)
        want = (trace.membranes[-1] + theta * trace.spikes.sum(dim=0)).sum(dim=(0, 1))
        assert scores == want.tolist()
        assert label == int(torch.tensor(scores).argmax())


def test_readout_refuses_a_head_it_cannot_read():
    layer = _linear(4, 4, neuron=NeuronConfig(type="lif", threshold=5, leak_shift=1, reset="hard"))
    weights = LayerWeights(codes=np.zeros((4, 6, 1, 1), dtype=np.int64), bias=np.zeros(4, dtype=np.int64),
                           threshold=np.full(4, 5, dtype=np.int64))
    with pytest.raises(ValueError, match="soft reset, leak_shift 0"):
        HeadReadout(layer=layer, weights=weights, membrane_word=SpikingPE(layer=layer, weights=weights).membrane_word)
