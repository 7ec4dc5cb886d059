"""Reset in the middle of a step (docs/arithmetic.md §13): every engine with run-time memories
(SpikingPE, SpikingAttention, SpikePool2x2, ResidualAdd, and the head PE under HeadReadout)
is driven with part of a sample, ``rst`` is asserted for 1–3 cycles after a random number of
accepted input tokens, and fresh samples sent after it must match the golden model exactly.

Each reset point comes from the printed seed (``stall_seed`` fixture plus the case's offset);
the amaranth.sim run drives ``rst`` of an explicit ``sync`` domain, as the Verilog top's ``rst``.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from amaranth import signed
from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.sim import Simulator
from spikehq.rtl.glue import ResidualAdd, SpikePool2x2
from spikehq.rtl.pe import SpikingPE
from spikehq.sim.amaranth_streams import stream_get, stream_put
from spikehq.sim.runner import run_network
from spikehq.sim.vectors import CaseParams, events_of_step, expected_events, make_case
from test_rtl_attention import BINARY, TERNARY, UINT3, expected_spikes, firing_threshold, make_unit, meta, random_samples
from test_rtl_glue import receive_steps
from test_rtl_readout import HeadWithReadout, golden_result, head_case, sample_tokens

STALL = 0.3
END = {"y": 0, "x": 0, "c": 0, "value": 0, "end": 1}
RESET_POINTS = range(3)          # reset points per case, each from its own seed


class _WithReset(Elaboratable):
    """``dut`` in an explicit ``sync`` domain whose ``rst`` a testbench can drive."""

    def __init__(self, dut):
        self.dut, self.cd = dut, ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.submodules.dut = self.dut
        return m


def event_steps(ends: int):
    """Collector of ``ends`` steps of an event stream: a list of event lists."""
    async def collect(ctx, port, rng):
        return await receive_steps(ctx, port, rng, ends)
    return collect


def run_with_reset(dut, seed: int, inputs: dict, outputs: dict, *, ready_after: int | None = None,
                   max_cycles: int = 20_000) -> dict:
    """Interrupt a sample with a reset, then send fresh ones; return what the collectors got.

    ``inputs``: input port name → (tokens of the interrupted sample, tokens sent after reset).
    ``outputs``: output port name → collector ``async (ctx, port, rng)`` run after the reset.
    Before the reset, inputs are offered and outputs drained with random stalls until a random
    number of input tokens (at least one, fewer than all) was accepted, plus 0–3 cycles; ``rst``
    is then high for 1–3 cycles. ``ready_after``: the number of cycles after ``rst`` falls
    in which every input's ``ready`` must stay low (checked with outputs ready, inputs idle).
    """
    rng = random.Random(seed)
    top = _WithReset(dut)
    ins = {n: getattr(dut, n) for n in inputs}
    outs = {n: getattr(dut, n) for n in outputs}
    total = sum(len(first) for first, _ in inputs.values())
    stop, extra, hold = rng.randrange(1, total), rng.randrange(4), rng.randint(1, 3)
    state, got = {"go": False}, {}

    async def interrupt(ctx):
        pos, offering, accepted, cycles = dict.fromkeys(ins, 0), dict.fromkeys(ins, False), 0, 0
        last = None                                  # the cycle the stop count was reached
        while last is None or cycles - last < extra:
            for n, port in ins.items():
                if not offering[n] and accepted < stop and pos[n] < len(inputs[n][0]) and rng.random() >= STALL:
                    ctx.set(port.payload, inputs[n][0][pos[n]])
                    ctx.set(port.valid, 1)
                    offering[n] = True
            for port in outs.values():
                ctx.set(port.ready, rng.random() >= STALL)
            readies = (await ctx.tick().sample(*(port.ready for port in ins.values())))[2:]
            cycles += 1
            for (n, port), ready in zip(ins.items(), readies):
                if offering[n] and ready:
                    offering[n], pos[n], accepted = False, pos[n] + 1, accepted + 1
                    ctx.set(port.valid, 0)
            if last is None and (accepted >= stop or cycles > max_cycles):
                last = cycles
        print(f"reset after {accepted} of {total} input tokens, cycle {cycles}, held {hold} cycles")
        for port in ins.values():
            ctx.set(port.valid, 0)
        ctx.set(top.cd.rst, 1)
        for port in outs.values():
            ctx.set(port.ready, 1)
        for _ in range(hold):
            await ctx.tick()
        ctx.set(top.cd.rst, 0)
        if ready_after is not None:
            for cycle in range(ready_after + 1):
                readies = (await ctx.tick().sample(*(port.ready for port in ins.values())))[2:]
                assert all(readies) == (cycle == ready_after), f"ready {readies} {cycle} cycles after reset"
        for port in outs.values():
            ctx.set(port.ready, 0)
        state["go"] = True

    async def wait_for_reset(ctx):
        while not state["go"]:
            await ctx.tick()

    def sender(n, port, index):
        async def send(ctx):
            await wait_for_reset(ctx)
            put_rng = random.Random(seed * 11 + index)
            for token in inputs[n][1]:
                await stream_put(ctx, port, token, rng=put_rng, stall=STALL)
        return send

    def receiver(n, port, index):
        async def receive(ctx):
            await wait_for_reset(ctx)
            got[n] = await outputs[n](ctx, port, random.Random(seed * 13 + index))
        return receive

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(interrupt)
    for index, (n, port) in enumerate(ins.items()):
        sim.add_testbench(sender(n, port, index))
    for index, (n, port) in enumerate(outs.items()):
        sim.add_testbench(receiver(n, port, index))

    async def watchdog(ctx):
        await ctx.delay(20 * max_cycles * 1e-8)
        raise AssertionError(f"no progress after {20 * max_cycles} cycles (deadlock?)")
    sim.add_testbench(watchdog, background=True)
    sim.run()
    return got


def seeds(stall_seed: int, offset: int) -> list[int]:
    return [stall_seed + 1000 * offset + point for point in RESET_POINTS]


# ---- SpikingPE ---------------------------------------------------------------------------------

PE_CASES = {
    "linear_integer": CaseParams(kind="linear", scheme="pot", bits=4, leak_shift=0, reset="soft", lanes=4, seed=21),
    "conv_integer": CaseParams(kind="conv2d", scheme="uniform", bits=4, activation_bits=4, lanes=2, seed=22),
    "conv_ternary_membrane": CaseParams(kind="conv2d", scheme="pot", bits=2, neuron="ternary", membrane="ternary",
                                        lanes=1, seed=23),
    "linear_ternary_membrane": CaseParams(kind="linear", scheme="uniform", bits=2, activation_bits=4,
                                          membrane="ternary", leak_shift=2, lanes=8, seed=24),
    # a spatially pruned PE (the reset points fall in the scan, not in the short prune pass)
    "conv_spatial_prune": CaseParams(kind="conv2d", scheme="pot", bits=4, lanes=2, spatial_prune_k=4, seed=25),
}


def pe_tokens(sample, rng) -> list[dict]:
    tokens = []
    for frame in sample:
        tokens += [{"y": y, "x": x, "c": c, "value": v, "end": 0} for y, x, c, v in events_of_step(frame, rng)]
        tokens.append(END)
    return tokens


@pytest.mark.parametrize("name", PE_CASES)
def test_pe_reset_mid_step(name, stall_seed):
    case = make_case(PE_CASES[name])
    T = case.layer.time_steps
    # interrupted: every input at its largest value (the most partial sums); then two fresh samples
    interrupted, fresh = case.samples[-2 if case.layer.activation_bits > 1 else -1], case.samples[:2]
    for seed in seeds(stall_seed, list(PE_CASES).index(name)):
        print(f"reset seed {seed}")
        rng = random.Random(seed)
        dut = SpikingPE(layer=case.layer, weights=case.weights)
        got = run_with_reset(dut, seed, {"i_spikes": (pe_tokens(interrupted, rng), pe_tokens(fresh[0], rng)
                                                      + pe_tokens(fresh[1], rng))},
                             {"o_spikes": event_steps(2 * T)}, ready_after=dut.cycles_after_reset)
        want = [expected_events(trace.spikes[t]) for trace in case.traces[:2] for t in range(T)]
        assert got["o_spikes"] == want, f"reset seed {seed}"


# ---- SpikingAttention ------------------------------------------------------------------------------

def attention_tokens(x) -> list[dict]:
    tokens = []
    for step in x:
        tokens += [{"y": n, "x": 0, "c": c, "value": int(step[n, c]), "end": 0} for n, c in step.nonzero().tolist()]
        tokens.append(END)
    return tokens


@pytest.mark.parametrize("shapes, neuron, membrane", [((BINARY,) * 3, "lif", "integer"),
                                                      ((BINARY, UINT3, TERNARY), "lif", "integer"),
                                                      ((TERNARY,) * 3, "ternary", "ternary")])
def test_attention_reset_mid_step(shapes, neuron, membrane, stall_seed):
    N, D, H, T = 6, 8, 2, 2
    samples = random_samples(31, 2, T, N, D, shapes, 0.4)
    dense = tuple(torch.ones(T, N, D, dtype=torch.int64) * (-1 if s == TERNARY else 1) for s in shapes)
    att = meta(H, firing_threshold(samples, H), neuron, membrane, leak_shift=0, reset="soft")
    expected = expected_spikes(samples, H, att, T)
    for seed in seeds(stall_seed, 10 + len(set(shapes)) + (neuron == "ternary")):
        print(f"reset seed {seed}")
        dut = make_unit(N, D, H, T, att, shapes, lanes=2)
        got = run_with_reset(
            dut, seed, {f"i_{n}": (attention_tokens(dense[i]), attention_tokens(samples[0][i]) +
                                   attention_tokens(samples[1][i])) for i, n in enumerate("qkv")},
            {"o_spikes": event_steps(2 * T)}, ready_after=dut.cycles_after_reset)
        counted = [Counter((y, c, v) for y, x, c, v in step) for step in got["o_spikes"]]
        assert counted == [step for sample in expected for step in sample], f"reset seed {seed}"


# ---- glue ------------------------------------------------------------------------------------------

def grid_tokens(maps, rng) -> list[dict]:
    """Tokens of [T, H, W, C] maps: each step's non-zero entries shuffled, then an end token."""
    tokens = []
    for frame in maps:
        tokens += [{"y": y, "x": x, "c": c, "value": v, "end": 0} for y, x, c, v in events_of_step(frame, rng)]
        tokens.append(END)
    return tokens


def test_pool_reset_mid_step(stall_seed):
    H, W, C, T = 4, 6, 5, 2
    gen = torch.Generator().manual_seed(41)
    fresh = (torch.rand(2, T, H, W, C, generator=gen) < 0.3).to(torch.int64)
    ones = torch.ones(T, H, W, C, dtype=torch.int64)
    for seed in seeds(stall_seed, 20):
        print(f"reset seed {seed}")
        rng = random.Random(seed)
        dut = SpikePool2x2(height=H, width=W, channels=C)
        got = run_with_reset(dut, seed, {"i_spikes": (grid_tokens(ones, rng), grid_tokens(fresh[0], rng)
                                                      + grid_tokens(fresh[1], rng))},
                             {"o_spikes": event_steps(2 * T)}, ready_after=dut.cycles_after_reset)
        pooled = fresh.reshape(2 * T, H // 2, 2, W // 2, 2, C).amax(dim=(2, 4))
        want = [sorted((y, x, c, 1) for y, x, c in step.nonzero().tolist()) for step in pooled]
        assert [sorted(step) for step in got["o_spikes"]] == want, f"reset seed {seed}"


def test_residual_add_reset_mid_step(stall_seed):
    N, C, T = 6, 8, 2
    gen = torch.Generator().manual_seed(51)
    skip = torch.randint(-3, 4, (2, T, N, 1, C), generator=gen) * torch.randint(0, 2, (2, T, N, 1, C), generator=gen)
    branch = torch.randint(-1, 2, (2, T, N, 1, C), generator=gen)
    full = torch.full((T, N, 1, C), 3)
    for seed in seeds(stall_seed, 30):
        print(f"reset seed {seed}")
        rng = random.Random(seed)
        dut = ResidualAdd(height=N, width=1, channels=C, skip_shape=signed(3), branch_shape=signed(2),
                          out_shape=signed(4))
        got = run_with_reset(dut, seed, {
            "i_skip": (grid_tokens(full, rng), grid_tokens(skip[0], rng) + grid_tokens(skip[1], rng)),
            "i_branch": (grid_tokens(-full.clamp(max=1), rng), grid_tokens(branch[0], rng) + grid_tokens(branch[1], rng))},
            {"o_sum": event_steps(2 * T)})
        total = (skip + branch).reshape(2 * T, N, 1, C)
        want = [sorted((y, x, c, int(step[y, x, c])) for y, x, c in step.nonzero().tolist()) for step in total]
        assert [sorted(step) for step in got["o_sum"]] == want, f"reset seed {seed}"


# ---- head PE + readout -------------------------------------------------------------------------------

def test_readout_reset_mid_sample(stall_seed):
    N, F, T = 5, 6, 3
    layer, weights = head_case(61, N=N, F=F, T=T)
    samples = [torch.randint(-8, 8, (T, N, 1, F)) * torch.randint(0, 2, (T, N, 1, F)) for _ in range(2)]
    full = torch.full((T, N, 1, F), 7)

    async def results(ctx, port, rng):
        out = []
        while len(out) < len(samples):
            payload, _ = await stream_get(ctx, port, rng=rng, stall=STALL)
            out.append(([int(s) for s in payload.scores], int(payload.label)))
        return out

    for seed in seeds(stall_seed, 40):
        print(f"reset seed {seed}")
        rng = random.Random(seed)
        dut = HeadWithReadout(layer, weights)
        got = run_with_reset(dut, seed, {"i_spikes": (sample_tokens(full, rng),
                                                      [t for x in samples for t in sample_tokens(x, rng)])},
                             {"o_result": results})
        assert got["o_result"] == [golden_result(layer, weights, x) for x in samples], f"reset seed {seed}"


# ---- the whole network on Verilator ----------------------------------------------------------------

@pytest.mark.verilator
def test_network_reset_mid_sample_on_verilator(stall_seed):
    """rst at a random cycle inside a digits sample; the samples after it match the golden model."""
    tests, failures = run_network("configs/digits_searched/searched.json", [0, 1, 2, 3], stall_seed=stall_seed,
                                  test_module="spikehq.sim.tb_reset")
    assert tests == 1 and failures == 0, "see build/sim/verilator/network_*/tb_reset_test_*.log"
