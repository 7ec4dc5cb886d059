"""Spiking self-attention (golden/attention.py, rtl/attention.py): the golden product against its
definition, and the RTL unit in amaranth.sim against golden.attention.run_attention, spike set by
spike set, with random valid/ready stalls on all four streams."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from amaranth import Cat, Const, Mux, signed, unsigned
from amaranth.back import verilog
from amaranth.sim import Simulator
from spikehq.golden.attention import attention_current, attention_widths, run_attention
from spikehq.golden.config import AttentionConfig, NeuronConfig
from spikehq.rtl import attention as attention_module
from spikehq.rtl.attention import SpikingAttention, value_max_abs
from spikehq.sim.amaranth_streams import stream_get, stream_put

BINARY, TERNARY, UINT3 = unsigned(1), signed(2), unsigned(3)


def meta(heads, threshold, neuron="lif", membrane="integer", leak_shift=1, reset="hard", variant="ssa"):
    return AttentionConfig(variant=variant, heads=heads, membrane=membrane,
                           neuron=NeuronConfig(type=neuron, threshold=threshold, leak_shift=leak_shift, reset=reset))


def random_values(gen: torch.Generator, shape, size, density: float) -> torch.Tensor:
    """Values of a stream shape: binary {0,1}, ternary {-1,0,1} (a spike), or unsigned 0…7."""
    nonzero = torch.rand(size, generator=gen) < density
    if shape == TERNARY:
        values = torch.where(torch.rand(size, generator=gen) < 0.5, -1, 1)
    else:
        values = torch.randint(1, value_max_abs(shape) + 1, size, generator=gen)
    return torch.where(nonzero, values, 0).to(torch.int64)


class Run:
    """Drive one SpikingAttention with samples of (q, k, v) [T, N, D] and collect its output."""

    def __init__(self, dut: SpikingAttention, samples, *, stall_seed: int, stall: float = 0.3,
                 zero_events: float = 0.0, start_delay: dict | None = None):
        self.dut, self.samples, self.stall, self.zero_events = dut, samples, stall, zero_events
        self.seed, self.start_delay = stall_seed, start_delay or {}
        self.outputs = []                  # per sample, per step: Counter of (token, channel, value)
        self.in_end_edges = {n: [] for n in "qkv"}   # clock edge of each accepted input end token
        self.out_end_edges = []
        self.events = {n: [] for n in "qkv"}         # events sent per (sample, step)

    def events_of(self, x: torch.Tensor, rng: random.Random):
        """Non-zero events of one step in random order; some zero-valued ones if asked."""
        N, D = x.shape
        events = [(n, c, int(x[n, c])) for n in range(N) for c in range(D)
                  if x[n, c] != 0 or rng.random() < self.zero_events]
        rng.shuffle(events)
        return events

    def sender(self, name: str, index: int):
        port = getattr(self.dut, f"i_{name}")
        rng = random.Random(self.seed * 7 + index)

        async def send(ctx):
            edge = 0
            for _ in range(self.start_delay.get(name, 0)):
                await ctx.tick()
                edge += 1
            for sample in self.samples:
                for x in sample[index]:
                    events = self.events_of(x, rng)
                    self.events[name].append(len(events))
                    for n, c, value in events:
                        edge += await stream_put(ctx, port, {"y": n, "x": 0, "c": c, "value": value, "end": 0},
                                                 rng=rng, stall=self.stall)
                    edge += await stream_put(ctx, port, {"y": 0, "x": 0, "c": 0, "value": 0, "end": 1},
                                             rng=rng, stall=self.stall)
                    self.in_end_edges[name].append(edge)
        return send

    async def receiver(self, ctx):
        rng, port, edge = random.Random(self.seed * 7 + 5), self.dut.o_spikes, 0
        for sample in self.samples:
            steps = []
            for _ in range(len(sample[0])):
                events = Counter()
                while True:
                    payload, edges = await stream_get(ctx, port, rng=rng, stall=self.stall)
                    edge += edges
                    if payload.end:
                        break
                    assert payload.x == 0
                    events[(payload.y, payload.c, payload.value)] += 1
                self.out_end_edges.append(edge)
                steps.append(events)
            self.outputs.append(steps)
        ctx.set(port.ready, 1)
        for _ in range(20):                # nothing more comes out
            _, _, valid = await ctx.tick().sample(port.valid)
            assert not valid, "output after the last end token"

    def run(self, max_cycles: int = 50_000):
        sim = Simulator(self.dut)
        sim.add_clock(1e-8)
        for index, name in enumerate("qkv"):
            sim.add_testbench(self.sender(name, index))
        sim.add_testbench(self.receiver)

        async def watchdog(ctx):
            await ctx.delay(max_cycles * 1e-8)
            raise AssertionError(f"no progress after {max_cycles} cycles (deadlock?)")
        sim.add_testbench(watchdog, background=True)
        sim.run()
        return self


def expected_spikes(samples, heads, att, T):
    """Per sample, per step: Counter of (token, channel, spike) from the golden model."""
    out = []
    for q, k, v in samples:
        s = run_attention(q, k, v, att, T)
        out.append([Counter({(n, c, int(s[t, n, c])): 1 for n, c in (s[t] != 0).nonzero().tolist()})
                    for t in range(T)])
    return out


def mismatches(run: Run, expected) -> int:
    return sum(got != want for g, e in zip(run.outputs, expected, strict=True) for got, want in zip(g, e, strict=True))


def make_unit(N, D, H, T, att, shapes, lanes=None):
    return SpikingAttention(tokens=N, channels=D, time_steps=T, attention=att,
                            q_shape=shapes[0], k_shape=shapes[1], v_shape=shapes[2], lanes=lanes)


def random_samples(seed, count, T, N, D, shapes, density):
    gen = torch.Generator().manual_seed(seed)
    return [tuple(random_values(gen, s, (T, N, D), density) for s in shapes) for _ in range(count)]


def firing_threshold(samples, heads) -> int:
    """A threshold that some neurons reach and others do not: the median of the positive |a|."""
    a = torch.cat([attention_current(q, k, v, heads).abs().flatten() for q, k, v in samples])
    a = a[a > 0]
    return max(1, int(a.float().median())) if a.numel() else 1


# ---- golden --------------------------------------------------------------------------------

def test_golden_attention_current_matches_definition():
    gen = torch.Generator().manual_seed(0)
    T, N, D, H = 2, 5, 12, 3
    q, k, v = (torch.randint(-3, 4, (T, N, D), generator=gen) for _ in range(3))
    a = attention_current(q, k, v, H)
    d = D // H
    for t in range(T):
        for n in range(N):
            for j in range(D):
                h = j // d
                want = sum(int(q[t, n, i]) * sum(int(k[t, m, i]) * int(v[t, m, j]) for m in range(N))
                           for i in range(h * d, h * d + d))
                assert a[t, n, j] == want, (t, n, j)


@pytest.mark.parametrize("shapes", [(BINARY,) * 3, (BINARY, UINT3, TERNARY), (TERNARY,) * 3])
def test_golden_widths_bound_is_reached_and_kept(shapes):
    N, D, H, T = 6, 8, 2, 3
    att = meta(H, 1000)
    w = attention_widths(tokens=N, channels=D, time_steps=T, attention=att,
                         **{f"{n}_max": value_max_abs(s) for n, s in zip("qkv", shapes)})
    full = [torch.full((T, N, D), -2 if s == TERNARY else value_max_abs(s)) for s in shapes]
    a = attention_current(*full, H)
    assert int(a.abs().max()) == w.current_bound        # the bound is tight
    assert w.current_width == w.current_bound.bit_length() + 1
    assert w.membrane_bound == T * w.current_bound and w.threshold_width == 10
    run_attention(*full, att, T)                    # asserts |u| ≤ bound every step
    tern = attention_widths(tokens=N, channels=D, time_steps=T, attention=meta(H, 5, membrane="ternary"),
                            q_max=1, k_max=1, v_max=1)
    assert tern.membrane_bound == 5 + tern.current_bound


def test_golden_a2os2a_hand_example():
    """One head, 2 tokens, d = 2: binary q, 2-bit keys, ternary v, threshold 5, no scale.
    KV = Kᵀ·V = [[3·1 + 1·(−1), 3·0 + 1·1], [0·1 + 2·(−1), 0 + 2·1]] = [[2, 1], [−2, 2]];
    a = Q·KV: token 0 (q = [1, 1]) → [0, 3]; token 1 (q = [1, 0]) → [2, 1]."""
    q = torch.tensor([[[1, 1], [1, 0]]])
    k = torch.tensor([[[3, 0], [1, 2]]])
    v = torch.tensor([[[1, 0], [-1, 1]]])
    a = attention_current(q, k, v, heads=1)
    assert a.tolist() == [[[0, 3], [2, 1]]]
    att = AttentionConfig(variant="a2os2a", heads=1, membrane="integer",
                          neuron=NeuronConfig(type="lif", threshold=3, leak_shift=0, reset="hard"))
    # a second step with the same inputs: membranes 0 and 2 (token 1) / 0 (fired) accumulate
    spikes = run_attention(torch.cat([q, q]), torch.cat([k, k]), torch.cat([v, v]), att, time_steps=2)
    assert spikes.tolist() == [[[0, 1], [0, 0]], [[0, 1], [1, 0]]]
    w = attention_widths(tokens=2, channels=2, time_steps=2, attention=att, q_max=1, k_max=3, v_max=1)
    assert (w.kv_bound, w.current_bound, w.membrane_bound) == (6, 12, 24)


# ---- RTL against golden ----------------------------------------------------------------------

CASES = {
    # name: (tokens, channels, heads, T, shapes, lanes, neuron, membrane, leak, reset, density)
    "ssa_lif": (8, 8, 2, 3, (BINARY,) * 3, None, "lif", "integer", 1, "hard", 0.4),
    "ssa_groups_soft": (6, 12, 2, 2, (BINARY,) * 3, 2, "lif", "integer", 0, "soft", 0.4),
    "a2os2a_shapes": (16, 16, 4, 2, (BINARY, UINT3, TERNARY), 2, "lif", "integer", 1, "hard", 0.3),
    "ssa_wide": (16, 16, 2, 4, (BINARY,) * 3, None, "lif", "integer", 2, "hard", 0.3),
    "ternary_neuron": (5, 12, 3, 4, (TERNARY,) * 3, 4, "ternary", "ternary", 1, "hard", 0.5),
    "ternary_neuron_integer_membrane": (8, 8, 2, 3, (TERNARY,) * 3, 2, "ternary", "integer", 2, "soft", 0.5),
}


@pytest.mark.parametrize("name", CASES)
def test_attention_matches_golden(name, stall_seed):
    N, D, H, T, shapes, lanes, neuron, membrane, leak, reset, density = CASES[name]
    seed = 100 + list(CASES).index(name)
    print(f"data seed {seed}")
    samples = random_samples(seed, 2, T, N, D, shapes, density)         # two consecutive samples
    att = meta(H, firing_threshold(samples, H), neuron, membrane, leak, reset,
               variant="a2os2a" if shapes[1] == UINT3 else "ssa")
    expected = expected_spikes(samples, H, att, T)
    assert sum(sum(e.values()) for steps in expected for e in steps) > 0
    run = Run(make_unit(N, D, H, T, att, shapes, lanes), samples, stall_seed=stall_seed,
              zero_events=0.05 if name == "a2os2a_shapes" else 0.0).run()
    assert run.outputs == expected
    assert len(run.out_end_edges) == 2 * T


def test_silence(stall_seed):
    N, D, H, T = 4, 8, 2, 3
    zeros = torch.zeros(T, N, D, dtype=torch.int64)
    run = Run(make_unit(N, D, H, T, meta(H, 1), (BINARY,) * 3), [(zeros,) * 3] * 2, stall_seed=stall_seed).run()
    assert run.outputs == [[Counter()] * T] * 2


@pytest.mark.parametrize("neuron", ["lif", "ternary"])
def test_all_firing(neuron, stall_seed):
    N, D, H, T = 4, 8, 4, 2
    shapes = (BINARY,) * 3 if neuron == "lif" else (TERNARY,) * 3
    ones = torch.ones(T, N, D, dtype=torch.int64)
    samples = [(ones, ones, ones), (ones, ones, -ones if neuron == "ternary" else ones)]
    att = meta(H, 1, neuron, "integer" if neuron == "lif" else "ternary", reset="soft")
    expected = expected_spikes(samples, H, att, T)
    assert all(sum(e.values()) == N * D for steps in expected for e in steps)
    run = Run(make_unit(N, D, H, T, att, shapes), samples, stall_seed=stall_seed).run()
    assert run.outputs == expected


@pytest.mark.parametrize("late", ["v", "q"])
def test_streams_are_accepted_independently(late, stall_seed):
    """One stream starts only after the other two have sent their whole step: they must not wait."""
    N, D, H, T = 4, 8, 2, 2
    samples = random_samples(7, 1, T, N, D, (BINARY,) * 3, 0.5)
    att = meta(H, firing_threshold(samples, H))
    dut = make_unit(N, D, H, T, att, (BINARY,) * 3)
    run = Run(dut, samples, stall_seed=stall_seed, stall=0.0, start_delay={late: 100}).run()
    assert run.outputs == expected_spikes(samples, H, att, T)
    for name in "qkv":
        if name != late:       # after the reset sweep, every event and the end token in consecutive cycles
            assert run.in_end_edges[name][0] == dut.cycles_after_reset + run.events[name][0] + 1 < 100


def test_cycle_count_matches_docstring():
    N, D, H, T = 6, 12, 2, 3
    shapes = (BINARY, UINT3, TERNARY)
    samples = random_samples(11, 1, T, N, D, shapes, 0.3)
    att = meta(H, firing_threshold(samples, H))
    dut = make_unit(N, D, H, T, att, shapes, lanes=3)
    run = Run(dut, samples, stall_seed=1, stall=0.0).run()
    expected = expected_spikes(samples, H, att, T)[0]
    for t in range(T):
        last_in = max(run.in_end_edges[n][t] for n in "qkv")
        cycles = dut.cycles_per_step(run.events["k"][t], run.events["q"][t], sum(expected[t].values()))
        assert run.out_end_edges[t] - last_in == cycles, t


def _sign_ignoring_times(x, y):
    """A plausible bug: products treat a signed factor's sign bit as a positive weight."""
    x, y = (y, x) if len(y) > len(x) else (x, y)
    x = x if x.shape().signed else Cat(x, Const(0, 1)).as_signed()
    return sum((Mux(y[i], x << i, 0) for i in range(len(y))), start=Const(0, 1))


def test_scoreboard_catches_a_broken_unit(monkeypatch, stall_seed):
    monkeypatch.setattr(attention_module, "_times", _sign_ignoring_times)
    N, D, H, T, shapes, lanes, neuron, membrane, leak, reset, density = CASES["ternary_neuron"]
    samples = random_samples(3, 1, T, N, D, shapes, density)
    att = meta(H, firing_threshold(samples, H), neuron, membrane, leak, reset)
    run = Run(make_unit(N, D, H, T, att, shapes, lanes), samples, stall_seed=stall_seed).run()
    assert mismatches(run, expected_spikes(samples, H, att, T)) > 0


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"^Channels \(10\) must be a positive multiple of heads \(3\)$"):
        make_unit(4, 10, 3, 2, meta(3, 1), (BINARY,) * 3)
    with pytest.raises(ValueError, match=r"^Channels \(8\) must be a positive multiple of heads \(0\)$"):
        make_unit(4, 8, 0, 2, meta(0, 1), (BINARY,) * 3)
    with pytest.raises(ValueError, match=r"^Lanes \(3\) must divide the head dimension \(4\)$"):
        make_unit(4, 8, 2, 2, meta(2, 1), (BINARY,) * 3, lanes=3)
    with pytest.raises(ValueError, match=r"^Lanes \(0\) must divide the head dimension \(4\)$"):
        make_unit(4, 8, 2, 2, meta(2, 1), (BINARY,) * 3, lanes=0)


def test_verilog_convert():
    dut = make_unit(6, 12, 2, 2, meta(2, 3, variant="a2os2a"), (BINARY, UINT3, TERNARY), lanes=3)
    text = verilog.convert(dut, name="spiking_attention")
    assert "module spiking_attention" in text and "o_spikes__valid" in text
