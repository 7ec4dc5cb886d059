"""Shared pieces of the cocotb testbenches: reset, and stream handshakes (amaranth.lib.stream
ports as Amaranth names them in Verilog: ``<name>__valid``, ``<name>__ready``, ``<name>__payload``)."""

from __future__ import annotations

import random

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["reset", "send_token"]

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
