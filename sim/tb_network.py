"""cocotb end-to-end testbench of the whole-network core, run by ``sim/runner.py`` under Verilator or Icarus.

Environment: ``SPIKEHQ_NETWORK`` (searched.json), ``SPIKEHQ_SAMPLES`` (comma-separated
digits test-set indices), ``SPIKEHQ_STALL_SEED``, ``SPIKEHQ_STALL`` (probability of a
valid/ready stall on the input and result streams), ``SPIKEHQ_RESULTS`` (JSON written here), ``SPIKEHQ_LANES`` (lanes policy, as ``make gen``),
``SPIKEHQ_PROFILE=1`` (count each engine's busy / waiting / blocked cycles during phase 2, :mod:`sim.profile`).

Phase 1, one sample at a time: the scoreboard compares, against
:class:`golden.network.IntegerNetwork`, the predicted class, every class score, and every
traced engine's spike count at every time step (``o_trace``), and records the cycles from the
first input event to the result (latency). Phase 2 sends the same samples back to back, so
several are in flight, compares classes and scores again and records the steady-state
cycles between results (throughput); it needs at least two samples. From the end of reset,
no output may be X or Z (4-state simulators). The number of compared values goes to
``SPIKEHQ_VALUES``.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.utils import get_sim_time

from ..search.data import load_dataset
from ..golden.network import load_network
from ..rtl.lanes import apply_lanes
from ..rtl.network import SpikingNetwork
from .cocotb_helpers import output_ports, reset, send_frames, take_result, watch_outputs, write_values
from .profile import EngineProfile

PERIOD_NS = 10
# no inference of the shipped sizes comes near this; a deadlock must fail, not hang
TIMEOUT_CYCLES = 20_000_000


def expected_counts(trace: dict, traced: list[str]) -> list[int]:
    """Golden spike counts per traced engine per step, in o_trace order."""
    out = []
    for name in traced:
        spikes = trace[name]["spikes"]                    # [T, 1, ...]
        out += [int((spikes[t] != 0).sum()) for t in range(spikes.shape[0])]
    return out


@cocotb.test()
async def network_matches_golden(dut):
    config = os.environ["SPIKEHQ_NETWORK"]
    indices = [int(i) for i in os.environ["SPIKEHQ_SAMPLES"].split(",")]
    stall_seed, stall = int(os.environ["SPIKEHQ_STALL_SEED"]), float(os.environ.get("SPIKEHQ_STALL", "0.2"))
    net = load_network(config)
    top = SpikingNetwork(config=apply_lanes(net.config, os.environ.get("SPIKEHQ_LANES", "balanced")),
                         weights=net.weights, trace=True)
    T = net.config.time_steps
    _, test = load_dataset("digits", time_steps=T)
    dut._log.info(f"{len(indices)} samples, stall seed {stall_seed}, stall probability {stall}")
    rng_in, rng_out = random.Random(stall_seed), random.Random(stall_seed + 1)
    clk = dut.clk
    Clock(clk, PERIOD_NS, unit="ns").start()
    await reset(dut, {"i_events__valid": 0, "o_result__ready": 0})
    watch = watch_outputs(dut, output_ports(top))
    in_layout = top.i_events.payload.shape()
    result_layout = top.o_result.payload.shape()
    trace_layout = top.o_trace.shape()

    async def send_sample(frames) -> int:
        return await send_frames(dut, "i_events", in_layout, net.input_frames(frames[0]), rng=rng_in, stall=stall)

    async def receive():
        """Take the next result (after a random stall); return it with o_trace of that cycle."""
        return await take_result(dut, result_layout, timeout_ns=TIMEOUT_CYCLES * PERIOD_NS, rng=rng_out,
                                 stall=stall, trace_layout=trace_layout)

    records, mismatches = [], 0
    compared = {"labels": 0, "scores": 0, "trace_counts": 0}
    for index in indices:
        frames = test.frames[index:index + 1]
        scores, trace = net.run(frames, dump=True)
        want_counts = expected_counts(trace, top.traced)
        start, wall = get_sim_time("ns"), time.monotonic()
        events = await send_sample(frames)
        result, counts = await receive()
        cycles = int((get_sim_time("ns") - start) // PERIOD_NS)
        wall = time.monotonic() - wall
        got_scores = [int(result.scores[c]) for c in range(len(scores[0]))]
        got_counts = [int(counts[i]) for i in range(len(want_counts))]
        ok_scores = got_scores == scores[0].tolist()
        ok_label = int(result.label) == int(scores[0].argmax())
        ok_counts = got_counts == want_counts
        compared["labels"] += 1
        compared["scores"] += len(got_scores)
        compared["trace_counts"] += len(want_counts)
        if not (ok_scores and ok_label and ok_counts):
            mismatches += 1
            bad = [f"{top.traced[i // T]}@t{i % T}: {g} != {w}"
                   for i, (g, w) in enumerate(zip(got_counts, want_counts)) if g != w]
            dut._log.error(f"sample {index}: label {int(result.label)} vs {int(scores[0].argmax())}, "
                           f"scores {got_scores} vs {scores[0].tolist()}, counts differ at {bad[:8]}")
        records.append({"index": index, "label": int(test.labels[index]), "rtl_label": int(result.label),
                        "golden_label": int(scores[0].argmax()), "golden_scores": scores[0].tolist(),
                        "scores_match": ok_scores,
                        "counts_match": ok_counts, "cycles": cycles, "wall_s": wall, "input_events": events,
                        "spike_counts": dict(zip(top.traced, (want_counts[i * T:(i + 1) * T]
                                                              for i in range(len(top.traced)))))})
        dut._log.info(f"sample {index}: class {int(result.label)} (golden {int(scores[0].argmax())}, "
                      f"label {int(test.labels[index])}), {cycles} cycles, "
                      f"{'match' if ok_scores and ok_label and ok_counts else 'MISMATCH'}")

    # Phase 2: the same samples back to back (several in flight): classes and scores again,
    # and the steady-state interval between results (throughput).
    golden = {r["index"]: (r["golden_scores"], r["golden_label"]) for r in records}

    async def send_all():
        for index in indices:
            await send_sample(test.frames[index:index + 1])

    # one sample has nothing to overlap with: phase 2 would only repeat phase 1 (and double
    # the run time of the Icarus regression, which simulates one sample)
    back_to_back = indices if len(indices) > 1 else []
    profile = EngineProfile(dut) if back_to_back and os.environ.get("SPIKEHQ_PROFILE") == "1" else None
    if profile is not None:
        cocotb.start_soon(profile.run())
    producer = cocotb.start_soon(send_all()) if back_to_back else None
    stream_mismatches, times = 0, []
    for index in back_to_back:
        result, _ = await receive()
        times.append(get_sim_time("ns"))
        want_scores, want_label = golden[index]
        got = [int(result.scores[c]) for c in range(len(want_scores))]
        compared["labels"] += 1
        compared["scores"] += len(got)
        if got != want_scores or int(result.label) != want_label:
            stream_mismatches += 1
            dut._log.error(f"back to back, sample {index}: class {int(result.label)} vs {want_label}, "
                           f"scores {got} vs {want_scores}")
    if producer is not None:
        await producer
    if profile is not None:
        profile.active = False
    interval = (times[-1] - times[0]) / (len(times) - 1) / PERIOD_NS if len(times) > 1 else None
    dut._log.info(f"back to back: {len(back_to_back) - stream_mismatches} of {len(back_to_back)} match; "
                  f"{interval if interval is None else round(interval)} cycles between results")
    checked = write_values(compared, samples=indices, stall_seed=stall_seed, xz_checked_time_steps=watch.checks)
    dut._log.info(f"{checked} values checked ({compared}), no X/Z on any output after reset "
                  f"({watch.checks} time steps with output changes checked)")
    if os.environ.get("SPIKEHQ_RESULTS"):
        path = Path(os.environ["SPIKEHQ_RESULTS"])
        path.write_text(json.dumps({"config": config, "stall": stall, "stall_seed": stall_seed,
                                    "traced": top.traced, "samples": records,
                                    "back_to_back": {"samples": len(back_to_back),
                                                     "mismatching_samples": stream_mismatches,
                                                     "cycles_between_results": interval,
                                                     "engine_cycles": profile.summary() if profile else None}},
                                    indent=1) + "\n")
    assert mismatches == 0, f"{mismatches} of {len(indices)} samples differ from the golden model (stall seed {stall_seed})"
    assert stream_mismatches == 0, f"{stream_mismatches} samples differ when sent back to back (stall seed {stall_seed})"
