"""rtl/banks.py: bank sizes, reads/writes of a banked memory in amaranth.sim against a list, the
pairing of ROM banks into shared block RAMs and the shared ROM's two read ports."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from spikehq.rtl.banks import (BankedMemory, RomBank, RomPair, SharedROM, bank_depth, bank_sizes, packed,
                               pair_offset, pair_roms)


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


def test_pair_offset_fits_one_true_dual_port_block_ram_at_a_power_of_two():
    def offset(a, b):
        return pair_offset(RomBank("a", 0, *a), RomBank("b", 0, *b))
    assert offset((2048, 4), (2048, 4)) == 2048                  # 4096×4: full
    assert offset((2048, 4), (2049, 4)) is None                  # one word too many
    assert offset((1024, 8), (1024, 8)) == 1024                  # 2048×8 (2K×9)
    assert offset((640, 2), (256, 16)) == 768                    # at 16 bits: 1K×18; 640 rounded up to 3·256
    assert offset((513, 16), (512, 16)) is None                  # 1024 + 512 words > 1K×18
    assert offset((512, 18), (512, 18)) == 512                   # the widest true dual-port aspect
    assert offset((256, 19), (256, 4)) is None                   # 512×36 has one read port only
    assert offset((4096, 2), (4096, 2)) == 4096                  # 8K×2
    assert offset((1000, 8), (700, 8)) == 1024                   # 700 words span 1024 addresses
    assert offset((300, 4), (100, 4)) == 384                     # a multiple of 128, no adder


def test_pair_roms_saves_block_rams_first_then_fills_them_with_logic_roms():
    banks = [RomBank("tok0", 0, 288, 4), RomBank("tok1", 0, 1024, 32), RomBank("tok2", 2, 256, 16),
             RomBank("rpe", 4, 512, 16), RomBank("q", 0, 2048, 4), RomBank("k", 0, 2048, 4),
             RomBank("v", 0, 2048, 4), RomBank("fc", 0, 2048, 8), RomBank("tiny", 0, 64, 2),
             RomBank("head", 0, 640, 2)]
    pairs = pair_roms(banks)
    assert pairs == pair_roms(list(banks))
    names = [(p.first.owner, p.second.owner, p.offset) for p in pairs]
    # block banks (> 2048 bits) in order: tok1 is 32 bits wide (no second port at that width);
    # tok2 takes the partner with the most bits that fits (rpe), the deeper one first; q takes
    # k; v and fc (full) find none. Then the logic-sized banks: tok0 fills v's block RAM; head
    # finds no block RAM left; tiny (LUT-sized) stays alone
    assert names == [("rpe", "tok2", 512), ("q", "k", 2048), ("v", "tok0", 2048)]
    for p in pairs:
        assert p.depth <= bank_depth(p.width) and p.width <= 18 and p.offset >= p.first.depth
        assert p.offset % (1 << (p.second.depth - 1).bit_length()) == 0
    # two logic-sized ROMs never pair (that would add a block RAM); nothing fits with a full one
    assert pair_roms([RomBank("a", 0, 288, 4), RomBank("b", 0, 640, 2)]) == []
    assert pair_roms([RomBank("v", 0, 2048, 4), RomBank("fc", 0, 2048, 8), RomBank("big", 0, 4000, 4)]) == []
    assert pair_roms([RomBank("a", 0, 64, 4), RomBank("b", 0, 2048, 4)]) == []


def test_packed_words_put_lane_zero_in_the_low_bits():
    from amaranth import signed, unsigned
    from amaranth.lib import data
    assert packed(data.ArrayLayout(unsigned(2), 4), [[1, 2, 3, 0], [3, 0, 0, 1]]) == [0b00111001, 0b01000011]
    assert packed(signed(4), [-1, 3]) == [15, 3]
    assert bank_sizes(16, 2500) == [1024, 1024, 452] and bank_sizes(8, 700) == [700]


def test_shared_rom_reads_both_banks_at_once_one_cycle_after_the_address():
    """Both ports read every word of their own bank, in random order, simultaneously."""
    seed = 1010
    print(f"seed {seed}")
    rng = random.Random(seed)
    first, second = RomBank("a", 0, 640, 2), RomBank("b", 2, 256, 16)
    pair = RomPair(first, second, pair_offset(first, second))
    words = {bank: [rng.getrandbits(bank.width) for _ in range(bank.depth)] for bank in (first, second)}
    dut = SharedROM(pair, words[first], words[second])
    order = {bank: rng.sample(range(bank.depth), bank.depth) for bank in (first, second)}
    order[second] *= 3                                     # as many reads on both ports
    order[second] = order[second][:first.depth]

    async def bench(ctx):
        seen = {first: [], second: []}
        for t in range(first.depth + 1):
            for port, bank in ((dut.a, first), (dut.b, second)):
                if t:
                    seen[bank].append(ctx.get(port.data))
                if t < first.depth:
                    ctx.set(port.addr, order[bank][t])
            await ctx.tick()
        for bank in (first, second):
            assert seen[bank] == [words[bank][a] for a in order[bank]], bank

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    with pytest.raises(ValueError, match="init of b bank 2 exceeds 256 words of 16 bits"):
        SharedROM(pair, words[first], [1 << 16])


@pytest.mark.parametrize("depth, width, external, partner", [(2500, 16, 2, (500, 8)), (700, 8, 0, (1000, 8))])
def test_banked_memory_reads_an_external_bank_with_the_same_latency(depth, width, external, partner):
    """A bank of a BankedMemory held in a SharedROM (behind another ROM, at an aligned offset):
    read_data is still the word of the address set two cycles before, and the other port reads
    its own ROM meanwhile."""
    seed = depth + width + external
    print(f"seed {seed}")
    rng = random.Random(seed)
    words = [rng.getrandbits(width) for _ in range(depth)]
    other = [rng.getrandbits(partner[1]) for _ in range(partner[0])]
    mem = BankedMemory(shape=width, depth=depth, init=words, external=[external])
    mine = RomBank("mine", external, bank_sizes(width, depth)[external], width)
    theirs = RomBank("theirs", 0, *partner)
    pair = RomPair(theirs, mine, pair_offset(theirs, mine))
    assert pair.offset > theirs.depth                      # the offset is aligned, not just after
    start = sum(bank_sizes(width, depth)[:external])
    rom = SharedROM(pair, other, packed(width, words[start:start + mine.depth]))
    m = Module()
    m.submodules.mem, m.submodules.rom = mem, rom
    wiring.connect(m, getattr(mem, f"bank{external}"), rom.b)
    reads = [rng.randrange(depth) for _ in range(300)] + [start + a for a in range(mine.depth)]
    theirs_reads = [rng.randrange(partner[0]) for _ in reads]

    async def bench(ctx):
        seen, seen_other = [], []
        for addr, addr_other in zip(reads + [0, 0], theirs_reads + [0, 0]):
            ctx.set(mem.read_addr, addr)
            ctx.set(rom.a.addr, addr_other)
            await ctx.tick()
            seen.append(ctx.get(mem.read_data))
            seen_other.append(ctx.get(rom.a.data))
        assert seen[1:len(reads) + 1] == [words[a] for a in reads]
        assert seen_other[:len(reads)] == [other[a] for a in theirs_reads]

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    with pytest.raises(ValueError, match="external bank must be a ROM"):
        BankedMemory(shape=width, depth=depth, writable=True, external=[0])
