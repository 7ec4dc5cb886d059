"""Put and get tokens on :mod:`amaranth.lib.stream` interfaces in amaranth.sim async testbenches,
with seeded random valid/ready stalls (the cocotb counterpart is :mod:`sim.cocotb_helpers`).

Both functions hold ``valid`` / ``ready`` low again when they return and report how many clock
edges they took, so a testbench can count cycles across several of them. With an ``rng`` they
draw one number per stall decision (also when ``stall`` is 0), so a seed gives one pattern.
"""

from __future__ import annotations

import random

__all__ = ["stream_put", "stream_get"]


def _check(rng: random.Random | None, stall: float) -> None:
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"Stall probability must be in [0, 1), not {stall}")
    if stall and rng is None:
        raise ValueError("Random stalls need an rng")


async def stream_put(ctx, port, payload, *, rng: random.Random | None = None, stall: float = 0.0) -> int:
    """Send one ``payload`` on the producer side of ``port``: first idle for a random number of
    cycles (each with probability ``stall``), then hold ``valid`` until the consumer takes it.

    Returns the clock edges that took (idle cycles included).
    """
    _check(rng, stall)
    edges = 0
    while rng is not None and rng.random() < stall:
        await ctx.tick()
        edges += 1
    ctx.set(port.payload, payload)
    ctx.set(port.valid, 1)
    while True:
        _, _, ready = await ctx.tick().sample(port.ready)
        edges += 1
        if ready:
            break
    ctx.set(port.valid, 0)
    return edges


async def stream_get(ctx, port, *, rng: random.Random | None = None, stall: float = 0.0):
    """Take one token from the consumer side of ``port``, ``ready`` low in each cycle with
    probability ``stall``.

    Returns ``(payload, edges)``: the token and the clock edges it took.
    """
    _check(rng, stall)
    edges = 0
    while True:
        ready = rng is None or rng.random() >= stall
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        edges += 1
        if valid and ready:
            ctx.set(port.ready, 0)
            return payload, edges
