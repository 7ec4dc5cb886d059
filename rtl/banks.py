"""A memory split into block-RAM-sized banks whose outputs are registered before they are
selected (docs/arithmetic.md §10): no path runs from a block RAM through a multiplexer.

A memory deeper than one block RAM is cascaded by the tools with a multiplexer right after the
RAM outputs, on the slowest path of the design (an ECP5 DP16KD's clock-to-output is 5.6–5.8 ns
in nextpnr's speed-6 model). :class:`BankedMemory` makes the banks explicit: the read address
goes in at cycle ``t``, each bank's word is registered at ``t + 1``, and ``read_data`` is the
selected word during ``t + 2``. A memory that fits one bank registers the address instead, so
the RAM output feeds its consumer's register directly, with the same latency.
"""

from __future__ import annotations

from amaranth import Shape, Signal
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .events import index_shape

__all__ = ["bank_depth", "BankedMemory"]


def bank_depth(width: int) -> int:
    """Words of one ECP5 DP16KD (18 kbit) at a word width of ``width`` bits: its native
    aspect ratios 16K×1, 8K×2, 4K×4, 2K×9, 1K×18 and 512×36 (wider words take several side by side)."""
    for limit, depth in ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024)):
        if width <= limit:
            return depth
    return 512


class BankedMemory(wiring.Component):
    """``depth`` words of ``shape`` in banks of at most ``bank_depth(width)`` words.

    ``read_addr`` at cycle ``t`` → ``read_data`` during ``t + 2``. With ``writable``, the
    ``write_addr``/``write_data``/``write_en`` ports write one word (to its bank) per cycle.
    ``attrs`` go to every bank (synthesis hints).
    """

    def __init__(self, *, shape, depth: int, init=(), writable: bool = False, attrs: dict | None = None):
        self.shape, self.depth, self.init, self.attrs = shape, depth, list(init), attrs
        self.bank_words = min(bank_depth(Shape.cast(shape).width), depth)
        self.banks = -(-depth // self.bank_words)
        members = {"read_addr": In(index_shape(depth)), "read_data": Out(shape)}
        if writable:
            members.update(write_addr=In(index_shape(depth)), write_data=In(shape), write_en=In(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n = self.bank_words
        select = Signal(index_shape(self.banks))       # bank of the address read at t, at t + 1
        chosen = Signal(index_shape(self.banks))       # … at t + 2
        m.d.sync += [select.eq(self.read_addr // n if self.banks > 1 else 0), chosen.eq(select)]
        outputs = []
        for b in range(self.banks):
            words = min(n, self.depth - b * n)
            m.submodules[f"bank{b}"] = bank = memory.Memory(
                shape=self.shape, depth=max(words, 2), init=self.init[b * n:(b + 1) * n], attrs=self.attrs)
            port = bank.read_port()
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
            if "write_en" in self.signature.members:
                wr = bank.write_port()
                m.d.comb += [wr.addr.eq(self.write_addr % n), wr.data.eq(self.write_data),
                             wr.en.eq(self.write_en & ((self.write_addr // n) == b))]
        if outputs is not None:
            with m.Switch(chosen):
                for b, held in enumerate(outputs):
                    with m.Case(b):
                        m.d.comb += self.read_data.eq(held)
        return m
