"""A memory split into block-RAM-sized banks whose outputs are registered before they are
selected (docs/arithmetic.md §10): no path runs from a block RAM through a multiplexer.

A memory deeper than one block RAM is cascaded by the tools with a multiplexer right after the
RAM outputs, on the slowest path of the design (an ECP5 DP16KD's clock-to-output is 5.6–5.8 ns
in nextpnr's speed-6 model). :class:`BankedMemory` makes the banks explicit: the read address
goes in at cycle ``t``, each bank's word is registered at ``t + 1``, and ``read_data`` is the
selected word during ``t + 2``. A memory that fits one bank registers the address instead, so
the RAM output feeds its consumer's register directly, with the same latency.

Shared ROMs: a ROM bank uses one port of its block RAM. :func:`pair_roms` pairs two small
ROM banks (of any engines) that fit one block RAM together; :class:`SharedROM` holds both, one
on each port of a true dual-port block RAM (an ECP5 DP16KD), and the owners'
:class:`BankedMemory` read that bank through a :class:`BankReadSignature` port (``external``)
with unchanged latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Shape, Signal, unsigned
from amaranth.hdl import Module, ShapeCastable
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .events import index_shape

__all__ = ["bank_depth", "bank_sizes", "BankedMemory", "BankReadSignature", "RomBank", "RomPair", "pair_offset",
           "pair_roms", "packed", "SharedROM", "LUT_RAM_MAX_DEPTH", "ROM_LOGIC_MAX_BITS",
           "DUAL_PORT_MAX_WIDTH"]

# Memories of at most this many words go to LUT RAM (or registers where a device has none):
# a block RAM for them would sit almost empty (docs/synthesis.md, "Memories").
LUT_RAM_MAX_DEPTH = 64

# A ROM of at most this many bits is left to logic (LUTs) by yosys' memory_libmap: a soft-logic
# ROM bit costs 1/16 (its default -logic-cost-rom) against 128 per DP16KD; the search's FPGA
# cost model fits the same threshold on ECP5 (search/data/fpga_cost_ecp5.json).
ROM_LOGIC_MAX_BITS = 2048

# Widest word of each port of an ECP5 DP16KD in true dual-port mode (1K×18; 512×36 needs
# pseudo-dual-port, i.e. one read port).
DUAL_PORT_MAX_WIDTH = 18


def bank_depth(width: int) -> int:
    """Words of one ECP5 DP16KD (18 kbit) at a word width of ``width`` bits: its native
    aspect ratios 16K×1, 8K×2, 4K×4, 2K×9, 1K×18 and 512×36 (wider words take several side by side)."""
    for limit, depth in ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024)):
        if width <= limit:
            return depth
    return 512


def bank_sizes(width: int, depth: int) -> list[int]:
    """Words of each bank of a :class:`BankedMemory` of ``depth`` words of ``width`` bits."""
    n = min(bank_depth(width), depth)
    return [min(n, depth - b * n) for b in range(-(-depth // n))]


class BankReadSignature(wiring.Signature):
    """One bank's synchronous read port, seen from its reader: ``data`` is word ``addr`` (of
    ``depth`` words of ``width`` bits) one cycle later."""

    def __init__(self, *, depth: int, width: int):
        self.depth, self.width = depth, width
        super().__init__({"addr": Out(index_shape(depth)), "data": In(width)})

    def __repr__(self):
        return f"BankReadSignature(depth={self.depth}, width={self.width})"


def packed(shape, words) -> list[int]:
    """Init words of ``shape`` (ints, or lists/dicts for a layout) as unsigned bit patterns."""
    def bits(word):
        value = Const.cast(shape.const(word)) if isinstance(shape, ShapeCastable) else Const(word, Shape.cast(shape))
        return value.value & ((1 << len(value)) - 1)
    return [bits(word) for word in words]


class BankedMemory(wiring.Component):
    """``depth`` words of ``shape`` in banks of at most ``bank_depth(width)`` words.

    ``read_addr`` at cycle ``t`` → ``read_data`` during ``t + 2``. With ``writable``, the
    ``write_addr``/``write_data``/``write_en`` ports write one word (to its bank) per cycle.
    ``attrs`` go to every bank (synthesis hints). A bank index in ``external`` (a ROM's) is not
    built here: it is read through the port ``bank<b>`` (:class:`BankReadSignature`), e.g. from
    a :class:`SharedROM` holding the bank's words (:func:`packed`).
    """

    def __init__(self, *, shape, depth: int, init=(), writable: bool = False, attrs: dict | None = None,
                 external=()):
        self.shape, self.depth, self.init, self.attrs = shape, depth, list(init), attrs
        self.width = Shape.cast(shape).width
        self.sizes = bank_sizes(self.width, depth)
        self.bank_words, self.banks = self.sizes[0], len(self.sizes)
        self.external = sorted(set(external))
        if self.external and writable:
            raise ValueError("BankedMemory: an external bank must be a ROM (writable=False)")
        if any(not 0 <= b < self.banks for b in self.external):
            raise ValueError(f"BankedMemory: external banks {self.external} outside 0 … {self.banks - 1}")
        members = {"read_addr": In(index_shape(depth)), "read_data": Out(shape)}
        if writable:
            members.update(write_addr=In(index_shape(depth)), write_data=In(shape), write_en=In(1))
        for b in self.external:
            members[f"bank{b}"] = Out(BankReadSignature(depth=max(self.sizes[b], 2), width=self.width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n = self.bank_words
        select = Signal(index_shape(self.banks))       # bank of the address read at t, at t + 1
        chosen = Signal(index_shape(self.banks))       # … at t + 2
        m.d.sync += [select.eq(self.read_addr // n if self.banks > 1 else 0), chosen.eq(select)]
        outputs = []
        for b in range(self.banks):
            port = self._bank_port(m, b)
            if self.banks == 1:
                address = Signal.like(self.read_addr)
                m.d.sync += address.eq(self.read_addr)
                m.d.comb += [port.addr.eq(address), self.read_data.eq(port.data)]
                outputs = None
            else:
                held = Signal(self.shape)
                m.d.comb += port.addr.eq(self.read_addr % n)
                m.d.sync += held.eq(port.data)
                outputs.append(held)
        if outputs is not None:
            with m.Switch(chosen):
                for b, held in enumerate(outputs):
                    with m.Case(b):
                        m.d.comb += self.read_data.eq(held)
        return m

    def _bank_port(self, m, b: int):
        """Bank ``b``'s read port (its ``addr``, and ``data`` one cycle later): the external port,
        or a read port of the bank's own memory (plus its write port when writable)."""
        if b in self.external:
            return getattr(self, f"bank{b}")
        n = self.bank_words
        m.submodules[f"bank{b}"] = bank = memory.Memory(
            shape=self.shape, depth=max(self.sizes[b], 2), init=self.init[b * n:(b + 1) * n], attrs=self.attrs)
        if "write_en" in self.signature.members:
            wr = bank.write_port()
            m.d.comb += [wr.addr.eq(self.write_addr % n), wr.data.eq(self.write_data),
                         wr.en.eq(self.write_en & ((self.write_addr // n) == b))]
        return bank.read_port()


@dataclass(frozen=True)
class RomBank:
    """One ROM bank to place: its owner (an engine's name), bank index, words and word width."""
    owner: str
    index: int
    depth: int
    width: int

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class RomPair:
    """Two ROM banks in one block RAM: ``first`` at words 0 …, ``second`` from word ``offset`` on."""
    first: RomBank
    second: RomBank
    offset: int

    @property
    def width(self) -> int:
        return max(self.first.width, self.second.width)

    @property
    def depth(self) -> int:
        return self.offset + self.second.depth


def pair_offset(first: RomBank, second: RomBank) -> int | None:
    """Word where ``second`` starts behind ``first`` in one true dual-port block RAM, or None if
    they do not fit one: the offset is a multiple of ``second``'s address range (a power of
    two), so its address needs no adder (constant high bits); both at the wider word width,
    which must be at most :data:`DUAL_PORT_MAX_WIDTH`, and within ``bank_depth`` of it."""
    width = max(first.width, second.width)
    if width > DUAL_PORT_MAX_WIDTH:
        return None
    span = 1 << index_shape(second.depth).width
    offset = -(-first.depth // span) * span
    return offset if offset + second.depth <= bank_depth(width) else None


def pair_roms(banks) -> list[RomPair]:
    """Pairs of ROM banks that share a block RAM, one on each port, deterministic for the given
    order. A bank of more than :data:`ROM_LOGIC_MAX_BITS` takes a block RAM alone, a smaller one
    (more than :data:`LUT_RAM_MAX_DEPTH` words) is left to logic by the tools. First the block
    banks pair among themselves (each pair saves a block RAM): greedy best fit, each unpaired
    bank in order takes the unpaired later one with the most bits that fits with it
    (:func:`pair_offset`, the deeper one first, which never needs more words). Then each logic
    bank in order joins the unpaired block bank with the most bits it fits with: it fills that
    block RAM's other port instead of LUTs. Two logic banks never pair (that would add a block RAM)."""
    eligible = [bank for bank in banks if bank.depth > LUT_RAM_MAX_DEPTH]
    block = [bank for bank in eligible if bank.bits > ROM_LOGIC_MAX_BITS]
    pairs = []

    def best_partner(bank, candidates):
        """The candidate with the most bits that fits with ``bank``, as a pair (or None)."""
        best = None
        for other in candidates:
            first, second = (bank, other) if bank.depth >= other.depth else (other, bank)
            offset = pair_offset(first, second)
            if offset is not None and (best is None or other.bits > best[1].bits):
                best = RomPair(first, second, offset), other
        return best

    while block:
        found = best_partner(block.pop(0), block)
        if found is not None:
            block.remove(found[1])
            pairs.append(found[0])
    single = [bank for bank in eligible if bank.bits > ROM_LOGIC_MAX_BITS
              and all(bank not in (p.first, p.second) for p in pairs)]
    for bank in (bank for bank in eligible if bank.bits <= ROM_LOGIC_MAX_BITS):
        found = best_partner(bank, single)
        if found is not None:
            single.remove(found[1])
            pairs.append(found[0])
    return pairs


class SharedROM(wiring.Component):
    """The two ROM banks of a :class:`RomPair` in one memory with two synchronous read ports
    (one true dual-port block RAM): ``a`` reads ``first``'s words, ``b`` ``second``'s, each
    ``data`` one cycle after its ``addr``. ``init_a``/``init_b``: the banks' words (unsigned)."""

    def __init__(self, pair: RomPair, init_a, init_b):
        self.pair, self.init_a, self.init_b = pair, list(init_a), list(init_b)
        for bank, init in ((pair.first, self.init_a), (pair.second, self.init_b)):
            if len(init) > bank.depth or any(not 0 <= word < 1 << bank.width for word in init):
                raise ValueError(f"SharedROM: init of {bank.owner} bank {bank.index} exceeds "
                                 f"{bank.depth} words of {bank.width} bits")
        super().__init__({"a": In(BankReadSignature(depth=max(pair.first.depth, 2), width=pair.first.width)),
                          "b": In(BankReadSignature(depth=max(pair.second.depth, 2), width=pair.second.width))})

    def elaborate(self, platform):
        m = Module()
        pair = self.pair
        init = self.init_a + [0] * (pair.offset - len(self.init_a)) + self.init_b
        # the attributes name the owners and the bits they hold for the memory report (synth/memories.py)
        m.submodules.rom = rom = memory.Memory(shape=unsigned(pair.width), depth=pair.depth, init=init, attrs={
            "spikehq_owners": f"{pair.first.owner} {pair.second.owner}",
            "spikehq_needed_bits": pair.first.bits + pair.second.bits})
        for port, bank, base in ((self.a, pair.first, 0), (self.b, pair.second, pair.offset)):
            read = rom.read_port()
            # `base` is a multiple of the port's address range: the OR only sets constant high bits
            m.d.comb += [read.addr.eq(port.addr | base), port.data.eq(read.data[:bank.width])]
        return m
