"""Search driver: temperature annealing, command line, a small end-to-end run (artifacts,
determinism, β effect), and the same entry point under torchrun with DDP (gloo, 2 processes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikehq.search import cli as search
from spikehq.search.trainer import temperature
from spikehq.golden.config import load_config
from spikehq.golden.network import load_network

SMOKE = ["--limit-train", "96", "--limit-test", "40", "--warmup-epochs", "1", "--search-epochs", "3",
         "--qat-epochs", "1", "--int-epochs", "1", "--batch-size", "16", "--alpha-lr", "0.5", "--no-progress",
         "--depth", "1"]


def test_temperature_annealing():
    taus = [temperature(i, 11, 5.0, 0.2) for i in range(11)]
    assert taus[0] == 5.0 and taus[-1] == pytest.approx(0.2)
    assert all(a > b for a, b in zip(taus, taus[1:]))
    ratios = [b / a for a, b in zip(taus, taus[1:])]
    assert max(ratios) == pytest.approx(min(ratios))          # exponential
    assert temperature(50, 11, 5.0, 0.2) == pytest.approx(0.2)
    assert temperature(0, 1, 5.0, 0.2) == 0.2


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        search.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--beta", "--search-epochs", "--seeds", "--cost", "--out", "torchrun"):
        assert flag in text


@pytest.mark.parametrize("argv,field", [
    (["--beta", "-1"], "--beta"), (["--beta", "x"], "--beta"), (["--search-epochs", "0"], "--search-epochs"),
    (["--dataset", "cifar10dvs"], "--data-root"), (["--tau-start", "1", "--tau-end", "2"], "--tau-end"),
    (["--preset", "huge"], "--preset"), (["--alpha-fraction", "1.5"], "--alpha-fraction"),
    (["--seeds", "1", "1"], "--seeds"), (["--seeds", "-2"], "--seeds"), (["--cost", "asic"], "--cost"),
    (["--spatial-sparsity", "1"], "--spatial-sparsity"), (["--spatial-sparsity", "x"], "--spatial-sparsity"),
    (["--channel-threshold", "-0.2"], "--channel-threshold"), (["--threshold-learning", "adam"], "--threshold-learning"),
    (["--membrane", "binary", "--neuron", "ternary"], "--membrane"), (["--membrane", "int"], "--membrane"),
    (["--attention", "a2os2a", "--key-bits", "5"], "--key-bits"), (["--attention", "a2os2a", "--key-bits", "0"], "--key-bits"),
    (["--attention", "a2os2a", "--key-step", "0"], "--key-step"), (["--key-bits", "2"], "--key-bits")])
def test_bad_flags_one_line(capsys, argv, field):
    with pytest.raises(SystemExit) as e:
        search.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


def test_bad_data_root_one_line(tmp_path, capsys):
    code = search.main(["--dataset", "ncaltech101", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "none: folder not found" in err
    assert not (tmp_path / "o" / "report.json").exists()


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _without_command(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc["metadata"]["search"].pop("command")
    return doc


def test_end_to_end_small_run_is_deterministic(tmp_path):
    torch.set_num_threads(1)
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    assert search.main(SMOKE + ["--beta", "0", "20", "--seeds", "3", "4", "--out", str(out1)]) == 0
    # the second run is sequential (--jobs 1): the seeds' results do not depend on the process layout
    assert search.main(SMOKE + ["--beta", "0", "20", "--seeds", "3", "4", "--out", str(out2), "--no-plots",
                                "--jobs", "1"]) == 0
    r1, r2 = _report(out1), _report(out2)
    assert [s["seed"] for s in r1["seeds"]] == [3, 4]
    for s1, s2 in zip(r1["seeds"], r2["seeds"]):
        for key in ("accuracy", "losses"):
            assert s1["baseline"][key] == s2["baseline"][key]
        for a, b in zip(s1["runs"], s2["runs"]):
            assert a["choices"] == b["choices"] and a["accuracy"] == b["accuracy"]
            assert a["history"]["probs"] == b["history"]["probs"]
    assert _without_command(out1 / "searched.json") == _without_command(out2 / "searched.json")
    assert sorted((out1 / "weights").iterdir()) and all(
        f.read_bytes() == (out2 / "weights" / f.name).read_bytes() for f in (out1 / "weights").iterdir())
    runs = r1["seeds"][0]["runs"]
    low, high = runs
    # β pushes the selection toward cheaper candidates (the paper convention's energy)
    assert r1["config"]["cost"] == "paper" and high["cost"]["convention"] == "paper"
    assert high["cost"]["energy_mj"] < low["cost"]["energy_mj"]
    assert high["probabilities"]["b0_fc1"][0] < low["probabilities"]["b0_fc1"][0]
    # mean ± std over the seeds, selection on the means, the shipped seed's export
    summ = r1["summary"]["betas"][1]
    accs = [s["runs"][1]["accuracy"] for s in r1["seeds"]]
    assert summ["accuracy"][0] == pytest.approx(sum(accs) / 2)
    assert summ["accuracy"][1] == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5)
    sel = r1["selected"]
    shipped = next(r for s in r1["seeds"] for r in s["runs"] if r["seed"] == sel["seed"] and r["beta"] == sel["beta"])
    assert (out1 / "searched.json").read_bytes() == Path(shipped["export"]).read_bytes()
    for f in ("report.md", "plots/pareto.png", "plots/choices.png", "plots/breakdown.png",
              "seed_3/checkpoints/baseline.pt", "seed_4/beta_20/searched.json"):
        assert (out1 / f).is_file(), f
    assert len(list((out1 / "plots").glob("probs_*.png"))) == 2
    for s in r1["seeds"]:
        for r in s["runs"]:
            assert set(r["layers"]) == {l["name"] for l in r["cost"]["layers"]}
            if r["integer_mode"]:
                assert r["agreement"] == 100.0
                assert r["dead_engines"] == [n for n, e in r["engines"].items() if n != "head" and e["spikes"] == 0]
                cfg = load_config(r["export"])
                assert cfg.metadata["search"]["beta"] == r["beta"] and cfg.metadata["search"]["seed"] == s["seed"]
    assert all(0 <= v <= 1 for v in r1["seeds"][0]["search_rates"].values())     # the paper cost's rates
    p11 = r1["paper_preset"]["classes"]["11"]
    assert p11["dense_mj"] == pytest.approx(30.42, abs=0.01) and p11["paper_convention_rate1_mj"] == pytest.approx(12.30, abs=0.01)
    assert p11["paper_convention_rate0_mj"] < p11["paper_convention_mj"] < p11["paper_convention_rate1_mj"]
    assert p11["tokenizer_spike_mac_mj"] < p11["dense_mj"]
    md = (out1 / "report.md").read_text()
    for text in ("fp32 baseline", "Per-layer choices", " ± ", "Shipped network", "findings", "non-zero weights"):
        assert text in md, text
    # resume reuses every phase and reproduces the report
    assert search.main(SMOKE + ["--beta", "0", "20", "--seeds", "3", "4", "--out", str(out1), "--resume", "--no-plots"]) == 0
    r3 = _report(out1)
    assert [r["accuracy"] for s in r3["seeds"] for r in s["runs"]] == [r["accuracy"] for s in r1["seeds"] for r in s["runs"]]


def test_torchrun_ddp_two_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "spikehq.search", *SMOKE,
           "--beta", "5", "--seeds", "0", "--out", str(out), "--no-plots"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = _report(out)
    assert r["world_size"] == 2 and len(r["seeds"][0]["runs"]) == 1
    if r["seeds"][0]["runs"][0]["integer_mode"]:
        assert r["seeds"][0]["runs"][0]["agreement"] == 100.0
        assert load_network(out / "searched.json").config.time_steps == 4


def test_fpga_cost_search_runs(tmp_path):
    """--cost fpga --target ecp5: the supernet's per-candidate costs are the fitted model's areas,
    every run reports the FPGA totals, and the findings table has the fpga energy row."""
    out = tmp_path / "fpga"
    assert search.main(SMOKE + ["--cost", "fpga", "--target", "ecp5", "--beta", "1", "--seeds", "0", "--out", str(out),
                                "--no-plots", "--jobs", "1"]) == 0
    r = _report(out)
    run = r["seeds"][0]["runs"][0]
    fpga = run["costs"]["fpga"]
    assert run["cost"] == fpga and fpga["convention"] == "fpga" and fpga["target"] == "ecp5"
    assert fpga["fpga"]["lut_equiv"] > 0 and fpga["fpga"]["area"] > fpga["fpga"]["lut_equiv"]
    assert all(layer["lanes"] >= 1 and layer["fpga"]["cycles"] > 0 for layer in fpga["layers"])
    assert fpga["energy_mj"] == pytest.approx(sum(layer["energy_mj"] for layer in fpga["layers"]))
    md = (out / "report.md").read_text()
    assert "fpga (energy accounting)" in md


def test_fpga_cost_missing_model_one_line(tmp_path, capsys, monkeypatch):
    from spikehq.search import fpga_cost
    monkeypatch.setattr(fpga_cost, "DATA_DIR", tmp_path)
    with pytest.raises(SystemExit) as e:
        search.main(["--cost", "fpga", "--target", "ice40", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "make fit-fpga-cost TARGET=ice40" in err
