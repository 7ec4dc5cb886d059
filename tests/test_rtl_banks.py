"""rtl/banks.py: bank sizes, and reads/writes of a banked memory in amaranth.sim against a list."""

import random

import pytest
from amaranth.sim import Simulator
from spikehq.rtl.banks import BankedMemory, bank_depth


def test_bank_depth_follows_the_dp16kd_aspect_ratios():
    assert [bank_depth(w) for w in (1, 2, 3, 4, 5, 9, 10, 18, 19, 36, 72)] == \
        [16384, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512, 512, 512]


@pytest.mark.parametrize("depth, width, writable", [(3000, 16, False), (700, 32, True), (100, 8, True)])
def test_banked_memory_reads_two_cycles_later(depth, width, writable):
    seed = depth + width
    print(f"seed {seed}")
    rng = random.Random(seed)
    words = [rng.getrandbits(width) for _ in range(depth)]
    dut = BankedMemory(shape=width, depth=depth, init=[] if writable else words, writable=writable)
    assert dut.banks == -(-depth // min(bank_depth(width), depth))
    reads = [rng.randrange(depth) for _ in range(200)]

    async def bench(ctx):
        if writable:
            ctx.set(dut.write_en, 1)
            for addr, word in enumerate(words):
                ctx.set(dut.write_addr, addr)
                ctx.set(dut.write_data, word)
                await ctx.tick()
            ctx.set(dut.write_en, 0)
        seen = []
        for addr in reads + [0, 0]:
            ctx.set(dut.read_addr, addr)
            await ctx.tick()
            seen.append(ctx.get(dut.read_data))
        # an address set at cycle t is read_data at t + 2: seen one tick later than it was set
        assert seen[1:len(reads) + 1] == [words[a] for a in reads]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
