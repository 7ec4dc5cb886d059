"""Stream handshakes for the cocotb testbenches (amaranth.lib.stream ports as Amaranth names
them in Verilog: ``<name>__valid``, ``<name>__ready``, ``<name>__payload``)."""

from __future__ import annotations

import random

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["send_token"]


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
