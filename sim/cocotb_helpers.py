"""Shared pieces of the cocotb testbenches: reset, stream handshakes (amaranth.lib.stream
ports as Amaranth names them in Verilog: ``<name>__valid``, ``<name>__ready``, ``<name>__payload``),
the X/Z watch on every output, and the count of compared values (``values.json``)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from amaranth.hdl import ValueCastable
from amaranth.lib import wiring
from cocotb.triggers import First, ReadOnly, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

__all__ = ["reset", "send_token", "send_frames", "take_result", "output_ports", "watch_outputs", "write_values"]

RESET_CYCLES = 3


async def reset(dut, idle: dict[str, int], *, cycles: int = RESET_CYCLES) -> None:
    """Hold ``rst`` for ``cycles`` rising edges of ``clk`` (already running) with every input
    of ``idle`` (port name → value) driven, then release it."""
    dut.rst.value = 1
    for name, value in idle.items():
        getattr(dut, name).value = value
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def send_token(dut, port: str, payload: int, *, rng: random.Random | None = None, stall: float = 0.0) -> None:
    """Drive one token into input stream ``port`` and return after the cycle it was accepted;
    before it, idle a random number of cycles (each with probability ``stall``, from ``rng``)."""
    clk, valid, ready = dut.clk, getattr(dut, f"{port}__valid"), getattr(dut, f"{port}__ready")
    while rng is not None and rng.random() < stall:
        await RisingEdge(clk)
    getattr(dut, f"{port}__payload").value = payload
    valid.value = 1
    while True:
        await ReadOnly()
        accepted = bool(ready.value)
        await RisingEdge(clk)
        if accepted:
            break
    valid.value = 0


def output_ports(component: wiring.Component) -> list[str]:
    """Verilog names of every output port of ``component`` (``<member>__<field>``, as
    ``amaranth.back`` names them), from its wiring signature."""
    names = []
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if member.flow == wiring.Out and len(value) > 0:
            names.append("__".join(map(str, path)))
    return names


def watch_outputs(dut, ports: list[str]):
    """From now on (call it right after reset: the first check is in this time step), fail the
    test as soon as any bit of an output in ``ports`` is X or Z: the generated Verilog must
    leave no output unknown in a 4-state simulator. The outputs are checked now and, in the
    read-only phase, at every time step in which any of them changes: an output can only
    become X or Z by changing, so this checks every settled value at the cost of one wake-up
    per change (not per clock cycle: long computations without output activity stay fast).
    Returns the task (cocotb ends it with the test); its ``checks`` attribute counts the time
    steps checked."""
    handles = [(name, getattr(dut, name)) for name in ports]

    async def watch():
        while True:
            await ReadOnly()
            for name, handle in handles:
                value = handle.value
                if not value.is_resolvable:
                    raise AssertionError(f"output {name} is {value} at {get_sim_time('ns')} ns (X or Z after reset)")
            task.checks += 1
            await First(*(handle.value_change for _, handle in handles))

    task = cocotb.start_soon(watch())
    task.checks = 0
    return task


def write_values(counts: dict[str, int], **extra) -> int:
    """Write ``{"compared": total, <kind>: count, ...}`` to ``SPIKEHQ_VALUES`` (set by
    ``sim/runner.py``: next to the test log) so a later tally can add up what the benches
    compared; return the total."""
    total = sum(counts.values())
    if os.environ.get("SPIKEHQ_VALUES"):
        doc = {"compared": total, **counts, "simulator": cocotb.SIM_NAME, **extra}
        Path(os.environ["SPIKEHQ_VALUES"]).write_text(json.dumps(doc, indent=1) + "\n")
    return total


async def send_frames(dut, port: str, layout, frames, *, rng: random.Random | None = None, stall: float = 0.0) -> int:
    """Send one sample into the network's event stream ``port``: per step of ``frames``
    ``[T, C, H, W]`` an event ``{y, x, c, value = 1}`` per non-zero entry (in ``nonzero`` order),
    then the step's end token; return the number of events (end tokens not counted)."""
    events = 0
    for t in range(frames.shape[0]):
        tokens = [{"y": y, "x": x, "c": c, "value": 1, "end": 0} for c, y, x in frames[t].nonzero().tolist()]
        events += len(tokens)
        for token in tokens + [{"y": 0, "x": 0, "c": 0, "value": 0, "end": 1}]:
            await send_token(dut, port, layout.const(token).as_value().value, rng=rng, stall=stall)
    return events


async def take_result(dut, layout, *, timeout_ns: float, rng: random.Random | None = None, stall: float = 0.0,
                      trace_layout=None):
    """Take the next ``o_result`` after a random stall (each cycle with probability ``stall``);
    return its payload and, with ``trace_layout``, ``o_trace`` of the same cycle (else None)."""
    clk = dut.clk
    await ReadOnly()
    if not dut.o_result__valid.value:
        await with_timeout(RisingEdge(dut.o_result__valid), timeout_ns, "ns")
    else:
        await RisingEdge(clk)
    while rng is not None and rng.random() < stall:
        await RisingEdge(clk)
    dut.o_result__ready.value = 1
    await ReadOnly()
    result = layout.from_bits(dut.o_result__payload.value.to_unsigned())
    counts = trace_layout.from_bits(dut.o_trace.value.to_unsigned()) if trace_layout is not None else None
    await RisingEdge(clk)
    dut.o_result__ready.value = 0
    return result, counts
