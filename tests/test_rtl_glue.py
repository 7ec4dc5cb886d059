"""Stream glue of the network top (rtl/glue.py) in amaranth.sim against the integer operations of
golden/network.py, with seeded random valid/ready stalls, and the glue's constructor checks."""

from __future__ import annotations

import random

import pytest
import torch
from amaranth import signed, unsigned
from amaranth.sim import Simulator
from spikehq.rtl.events import event_layout
from spikehq.rtl.glue import EventFork, ResidualAdd, SpikePool2x2, sum_banks
from spikehq.sim.amaranth_streams import stream_get, stream_put

STALL = 0.3
FIELDS = ("y", "x", "c", "value")
END = {**{f: 0 for f in FIELDS}, "end": 1}


async def send_all(ctx, port, tokens, rng):
    for payload in tokens:
        await stream_put(ctx, port, payload, rng=rng, stall=STALL)


async def receive_steps(ctx, port, rng, ends: int):
    """Collect tokens until ``ends`` end tokens: a list of per-step event lists."""
    steps, events = [], []
    while len(steps) < ends:
        payload, _ = await stream_get(ctx, port, rng=rng, stall=STALL)
        if payload.end:
            steps.append(events)
            events = []
        else:
            events.append(tuple(int(getattr(payload, f)) for f in FIELDS))
    return steps


def run(dut, *testbenches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("seed", [1, 2])
def test_fork_delivers_every_token_to_every_output_in_order(seed):
    print(f"seed {seed}")
    rng = random.Random(seed)
    dut = EventFork(event_layout(4, 1, 6, signed(4)), 3)
    tokens = [{"y": rng.randrange(4), "x": 0, "c": rng.randrange(4), "value": rng.randrange(-4, 4), "end": 0}
              for _ in range(40)] + [END]
    got = {}

    async def producer(ctx):
        await send_all(ctx, dut.i_events, tokens, random.Random(seed + 10))

    def consumer(i):
        async def tb(ctx):
            got[i] = await receive_steps(ctx, dut.o_events[i], random.Random(seed + 20 + i), ends=1)
        return tb

    run(dut, producer, *(consumer(i) for i in range(3)))
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
        tokens += events + [END]
    got = {}

    async def producer(ctx):
        await send_all(ctx, dut.i_spikes, tokens, random.Random(seed + 1))

    async def consumer(ctx):
        got["steps"] = await receive_steps(ctx, dut.o_spikes, random.Random(seed + 2), ends=T)

    run(dut, producer, consumer)
    for t in range(T):
        events = got["steps"][t]
        assert len(events) == len(set(events)), "a pooled pixel was sent twice in one step"
        assert sorted(events) == sorted((y, x, c, 1) for y, x, c in expected[t].nonzero().tolist())


@pytest.mark.parametrize("seed, skip_bits, branch, banks", [(5, 3, "lif", 1), (6, 4, "ternary", 1),
                                                          (5, 3, "lif", 2), (6, 4, "ternary", 4)])
def test_residual_add_is_the_integer_sum(seed, skip_bits, branch, banks):
    """Also with banks of sums (the skip input runs up to ``banks − 1`` steps ahead of the branch)."""
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
                      branch_shape=signed(2) if branch == "ternary" else unsigned(1), out_shape=signed(out_bits),
                      banks=banks)

    def stream(x):
        tokens = []
        for t in range(T):
            ev = [{"y": n, "x": 0, "c": c, "value": int(x[t, n, c]), "end": 0} for n, c in x[t].nonzero().tolist()]
            rng.shuffle(ev)
            tokens += ev + [END]
        return tokens

    got = {}

    async def skip_tb(ctx):
        await send_all(ctx, dut.i_skip, stream(skip), random.Random(seed + 1))

    async def branch_tb(ctx):
        await send_all(ctx, dut.i_branch, stream(br), random.Random(seed + 2))

    async def consumer(ctx):
        got["steps"] = await receive_steps(ctx, dut.o_sum, random.Random(seed + 3), ends=T)

    run(dut, skip_tb, branch_tb, consumer)
    total = skip + br
    for t in range(T):
        want = sorted((n, 0, c, int(total[t, n, c])) for n, c in total[t].nonzero().tolist())
        assert sorted(got["steps"][t]) == want
        assert len(got["steps"][t]) == len(set(got["steps"][t]))


def test_glue_constructor_checks():
    with pytest.raises(ValueError, match=r"^The residual add's banks must be a power of two, not 3$"):
        ResidualAdd(height=2, width=1, channels=2, skip_shape=signed(2), branch_shape=unsigned(1),
                    out_shape=signed(3), banks=3)
    with pytest.raises(ValueError, match=r"^An event fork needs at least one output, not 0$"):
        EventFork(event_layout(4, 1, 6, unsigned(1)), 0)
    with pytest.raises(ValueError, match=r"^2×2 pooling needs an even grid, not 4×5$"):
        SpikePool2x2(height=4, width=5, channels=2)
    with pytest.raises(ValueError, match=r"^2×2 pooling needs an even grid, not 3×4$"):
        SpikePool2x2(height=3, width=4, channels=2)


def _back_to_back(seed: int, forwarded: int = ResidualAdd.FORWARDED, banks: int = 1) -> bool:
    """The skip input stalls often, the branch never, both dense in one order, so the branch
    takes a position one or two cycles after the skip took it: the read of the pipelined
    read-add-write must see the sums still being written. True when every sum is right."""
    N, C = 4, 4
    dut = ResidualAdd(height=N, width=1, channels=C, skip_shape=signed(3), branch_shape=signed(2),
                      out_shape=signed(4), banks=banks)
    dut.FORWARDED = forwarded
    skip = [{"y": n, "x": 0, "c": c, "value": (n + c) % 3 + 1, "end": 0} for n in range(N) for c in range(C)]
    branch = [dict(t, value=-1 if (t["y"] + t["c"]) % 2 else 1) for t in skip]
    got = {}

    async def skip_tb(ctx):
        rng = random.Random(seed)
        for token in skip + [END]:
            await stream_put(ctx, dut.i_skip, token, rng=rng, stall=0.5)

    async def branch_tb(ctx):
        for token in branch + [END]:
            await stream_put(ctx, dut.i_branch, token)

    async def consumer(ctx):
        got["steps"] = await receive_steps(ctx, dut.o_sum, random.Random(seed + 1), ends=1)

    run(dut, skip_tb, branch_tb, consumer)
    want = sorted((s["y"], 0, s["c"], s["value"] + b["value"]) for s, b in zip(skip, branch)
                  if s["value"] + b["value"])
    return sorted(got["steps"][0]) == want


@pytest.mark.parametrize("seed, banks", [(7, 1), (8, 1), (7, 2), (8, 4)])
def test_residual_add_back_to_back_on_one_position(seed, banks):
    print(f"seed {seed}")
    assert _back_to_back(seed, banks=banks)


@pytest.mark.parametrize("forwarded, banks", [(0, 1), (1, 1), (0, 4), (1, 4)])
def test_every_residual_forwarding_path_matters(forwarded, banks):
    """With fewer forwarded events some seed loses a sum: both paths are exercised."""
    assert not all(_back_to_back(seed, forwarded, banks) for seed in (7, 8, 9, 10))


@pytest.mark.parametrize("banks", [1, 2, 4])
def test_residual_skip_runs_at_most_banks_minus_one_steps_ahead(banks):
    """With the branch silent, the add takes the skip input's step 0 and the next ``banks − 1``
    steps, and no more: the step after would need the bank step 0 still holds."""
    N, C, T = 3, 2, 5
    dut = ResidualAdd(height=N, width=1, channels=C, skip_shape=signed(3), branch_shape=unsigned(1),
                      out_shape=signed(4), banks=banks)
    steps = [[{"y": n, "x": 0, "c": c, "value": 1 + t, "end": 0} for n in range(N) for c in range(C)] + [END]
             for t in range(T)]
    sent = {"tokens": 0}

    async def skip_tb(ctx):
        for token in (tok for step in steps for tok in step):
            await stream_put(ctx, dut.i_skip, token)
            sent["tokens"] += 1

    async def watch(ctx):
        await ctx.tick().repeat(dut.cycles_after_reset + 200)
        sent["at_end"] = sent["tokens"]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(skip_tb, background=True)
    sim.add_testbench(watch)
    sim.run()
    buffered = 2                                          # the input's skid buffer
    want = sum(len(step) for step in steps[:banks]) + buffered
    assert sent["at_end"] == want


def test_sum_banks_share_one_block_ram():
    """As many banks (2 to 4) as fit one DP16KD: 1024 sums of 3-4 bits → 4 (4K×4), of 5-9 bits → 2
    (2K×9), and 2 when one bank alone needs more."""
    assert [sum_banks(1024, signed(w)) for w in (3, 4, 5, 9)] == [4, 4, 2, 2]
    assert sum_banks(16, signed(2)) == 4 and sum_banks(4096, signed(8)) == 2
