"""The C++ Verilator network harness (sim/network_harness.py, sim/harness/network_main.cpp):
bit-exact against the golden network on digits test samples with random stalls, and able to
fail: a wrong expectation and a deadlock are reported, not passed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from amaranth import unsigned

from spikehq.rtl.events import event_layout
from spikehq.sim.network_harness import build_harness, golden_expected, run_harness, sample_words

SEARCHED = Path("configs/digits_searched/searched.json")
# CI-sized subset of the digits test set; `make e2e` runs all 360
CI_SAMPLES = list(range(30))


def test_sample_words_pack_like_the_layout():
    layout = event_layout(8, 8, 2, unsigned(1))
    frames = torch.zeros(2, 2, 8, 8, dtype=torch.uint8)
    frames[0, 1, 7, 3] = frames[0, 0, 2, 5] = frames[1, 0, 0, 0] = 1
    end = layout.const({"y": 0, "x": 0, "c": 0, "value": 0, "end": 1}).as_value().value
    event = lambda y, x, c: layout.const({"y": y, "x": x, "c": c, "value": 1, "end": 0}).as_value().value
    # step 0: channel 0 before channel 1 (raster order per channel), then the end token
    assert sample_words(frames, layout) == [event(2, 5, 0), event(7, 3, 1), end, event(0, 0, 0), end]
    with pytest.raises(ValueError, match="binary"):
        sample_words(frames * 2, layout)


def test_run_harness_argument_errors():
    with pytest.raises(ValueError, match=r"^samples: expected distinct test-set indices, got \[1, 1\]$"):
        run_harness(SEARCHED, [1, 1], stall_seed=1)
    with pytest.raises(ValueError, match=r"^passes: expected some of \['back_to_back', 'one_at_a_time'\], got \['x'\]$"):
        run_harness(SEARCHED, [1], stall_seed=1, passes=("x",))


@pytest.fixture(scope="module")
def model():
    return build_harness(SEARCHED)


@pytest.mark.verilator
def test_harness_bit_exact_with_stalls(model, stall_seed):
    """30 samples one at a time (class, scores, spike counts) and back to back (class, scores)."""
    summary = run_harness(SEARCHED, CI_SAMPLES, stall_seed=stall_seed, stall=0.3)
    assert summary["mismatching_samples"] == 0, [s for s in summary["samples"]
                                                 if s["one_at_a_time"]["problems"] or s["back_to_back"]["problems"]]
    assert [s["index"] for s in summary["samples"]] == CI_SAMPLES
    one, b2b = summary["passes"]["one_at_a_time"], summary["passes"]["back_to_back"]
    assert one["samples"] == b2b["samples"] == len(CI_SAMPLES)
    assert one["rtl_accuracy"] == one["golden_accuracy"] == b2b["rtl_accuracy"]
    # several in flight: results come faster than one inference's latency
    assert b2b["cycles_between_results"] < one["cycles_mean"]
    assert one["cycles_per_s"] > 0 and one["sim_cycles"] >= sum(s["one_at_a_time"]["cycles"] for s in summary["samples"])


@pytest.mark.verilator
def test_harness_reports_a_wrong_expectation(model, stall_seed):
    """A wrong score fails both passes; a wrong spike count fails the one-at-a-time pass."""
    from spikehq.golden.network import load_network
    from spikehq.search.data import load_dataset
    samples = [3, 4, 5]
    _, test = load_dataset("digits", time_steps=model.time_steps)
    expected = golden_expected(load_network(SEARCHED), model, test.frames[samples], test.labels[samples], samples)
    expected.scores[1, 0] += 1                          # sample 4, class 0's score
    expected.counts[2, model.time_steps * 3 + 1] += 1   # sample 5, the 4th traced engine at step 1
    summary = run_harness(SEARCHED, samples, stall_seed=stall_seed, stall=0.2, expected=expected)
    assert summary["mismatching_samples"] == 2
    by_index = {s["index"]: s for s in summary["samples"]}
    assert by_index[3]["one_at_a_time"]["problems"] == by_index[3]["back_to_back"]["problems"] == []
    for name in ("one_at_a_time", "back_to_back"):
        assert [p.split(" ")[0] for p in by_index[4][name]["problems"]] == ["scores"]
    traced = model.traced[3]
    assert by_index[5]["one_at_a_time"]["problems"] == [
        f"spike counts {traced}@t1: {expected.counts[2, model.time_steps * 3 + 1] - 1} "
        f"!= {expected.counts[2, model.time_steps * 3 + 1]}"]
    assert by_index[5]["back_to_back"]["problems"] == []      # o_trace is compared one at a time only
    assert summary["passes"]["one_at_a_time"]["mismatching_samples"] == 2
    assert summary["passes"]["back_to_back"]["mismatching_samples"] == 1


@pytest.mark.verilator
def test_harness_binary_reports_a_deadlock(model, tmp_path):
    """A sample without its end tokens never produces a result: exit 3 after --timeout cycles."""
    layout = model.in_layout
    event = layout.const({"y": 1, "x": 1, "c": 0, "value": 1, "end": 0}).as_value().value
    events = tmp_path / "events.txt"
    events.write_text(f"spikehq-harness-events 1\n1\n0 2 {event:x} {event:x}\n")
    done = subprocess.run([str(model.binary), "--events", str(events), "--results", str(tmp_path / "results.txt"),
                           "--seed", "1", "--timeout", "5000"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip().startswith("error: deadlock: no handshake for 5000 cycles")
    assert "1 samples sent, 0 results" in done.stderr


@pytest.mark.verilator
def test_e2e_runs_the_harness_and_writes_the_summary(model, tmp_path, capsys):
    from spikehq.sim.e2e import main as e2e_main
    out = tmp_path / "summary.json"
    assert e2e_main(["--samples", "2", "--first", "358", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "e2e: PASS: 0 of 2 samples mismatch" in printed and "golden" in printed
    summary = json.loads(out.read_text())
    assert [s["index"] for s in summary["samples"]] == [358, 359] and summary["mismatching_samples"] == 0


def test_e2e_prints_mismatches_and_fails(monkeypatch, tmp_path, capsys):
    """A mismatch the harness reports makes `make e2e` print it and exit 1."""
    import spikehq.sim.network_harness as harness
    from spikehq.sim.e2e import main as e2e_main
    passes = {p: {"samples": 1, "mismatching_samples": int(p == "back_to_back"), "rtl_accuracy": 0.0,
                  "golden_accuracy": 100.0, "cycles_mean": 10.0, "cycles_min": 10, "cycles_max": 10,
                  "cycles_between_results": None, "cycles_per_s": 1e5} for p in ("one_at_a_time", "back_to_back")}
    sample = {"index": 0, "one_at_a_time": {"problems": []}, "back_to_back": {"problems": ["class 3 != 1"]}}
    monkeypatch.setattr(harness, "run_harness", lambda *a, **k: {"passes": passes, "samples": [sample],
                                                                  "mismatching_samples": 1})
    assert e2e_main(["--samples", "1", "--out", str(tmp_path / "s.json")]) == 1
    printed = capsys.readouterr().out
    assert "e2e: MISMATCH sample 0 (back to back): class 3 != 1" in printed
    assert "e2e: FAIL: 0 of 1 samples mismatch one at a time" in printed and "1 back to back" in printed


@pytest.mark.verilator
def test_harness_writes_fst_waves_on_request(tmp_path, stall_seed):
    """SPIKEHQ_WAVES / waves=True: a waves build of the harness traces the run to FST."""
    from spikehq.search.export import export_network
    from test_golden_network import calibrated_model
    model, _ = calibrated_model(3)
    config = export_network(model, tmp_path / "small", name="small")
    summary = run_harness(config, [0], stall_seed=stall_seed, waves=True, passes=("one_at_a_time",),
                          build_root=tmp_path / "sim")
    assert summary["mismatching_samples"] == 0
    (fst,) = (tmp_path / "sim").glob("harness_*/one_at_a_time.fst")
    assert fst.stat().st_size > 10_000
