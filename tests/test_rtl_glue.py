"""Stream glue of the network top (rtl/glue.py) in amaranth.sim against the integer operations of
golden/network.py, with seeded random valid/ready stalls, and the glue's constructor checks."""

from __future__ import annotations

import random

import pytest
import torch
from amaranth import signed, unsigned
from amaranth.sim import Simulator
from spikehq.rtl.events import event_layout
from spikehq.rtl.glue import EventFork, ResidualAdd, SpikePool2x2
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


@pytest.mark.parametrize("seed, skip_bits, branch, skip_fifo", [(5, 3, "lif", 0), (6, 4, "ternary", 0),
                                                              (5, 3, "lif", 5), (6, 4, "ternary", 48)])
def test_residual_add_is_the_integer_sum(seed, skip_bits, branch, skip_fifo):
    """Also with a skip FIFO smaller than a step (it fills and holds the skip back) and one of a
    whole step (the skip input runs a step ahead of the branch)."""
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
                      skip_fifo=skip_fifo)

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
    with pytest.raises(ValueError, match=r"^The skip FIFO depth must be 0 \(none\) or positive, not -1$"):
        ResidualAdd(height=2, width=1, channels=2, skip_shape=signed(2), branch_shape=unsigned(1),
                    out_shape=signed(3), skip_fifo=-1)
    with pytest.raises(ValueError, match=r"^An event fork needs at least one output, not 0$"):
        EventFork(event_layout(4, 1, 6, unsigned(1)), 0)
    with pytest.raises(ValueError, match=r"^2×2 pooling needs an even grid, not 4×5$"):
        SpikePool2x2(height=4, width=5, channels=2)
    with pytest.raises(ValueError, match=r"^2×2 pooling needs an even grid, not 3×4$"):
        SpikePool2x2(height=3, width=4, channels=2)


def _back_to_back(seed: int, forwarded: int = ResidualAdd.FORWARDED) -> bool:
    """The skip input stalls often, the branch never, both dense in one order, so the branch
    takes a position one or two cycles after the skip took it: the read of the pipelined
    read-add-write must see the sums still being written. True when every sum is right."""
    N, C = 4, 4
    dut = ResidualAdd(height=N, width=1, channels=C, skip_shape=signed(3), branch_shape=signed(2),
                      out_shape=signed(4))
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


@pytest.mark.parametrize("seed", [7, 8])
def test_residual_add_back_to_back_on_one_position(seed):
    print(f"seed {seed}")
    assert _back_to_back(seed)


@pytest.mark.parametrize("forwarded", [0, 1])
def test_every_residual_forwarding_path_matters(forwarded):
    """With fewer forwarded events some seed loses a sum: both paths are exercised."""
    assert not all(_back_to_back(seed, forwarded) for seed in (7, 8, 9, 10))
