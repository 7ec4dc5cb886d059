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
    for flag in ("--preset", "--beta", "--search-epochs", "--seed", "--out", "torchrun"):
        assert flag in text


@pytest.mark.parametrize("argv,field", [
    (["--beta", "-1"], "--beta"), (["--beta", "x"], "--beta"), (["--search-epochs", "0"], "--search-epochs"),
    (["--dataset", "cifar10dvs"], "--data-root"), (["--tau-start", "1", "--tau-end", "2"], "--tau-end"),
    (["--preset", "huge"], "--preset"), (["--alpha-fraction", "1.5"], "--alpha-fraction")])
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


def test_end_to_end_small_run_is_deterministic(tmp_path):
    torch.set_num_threads(1)
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    assert search.main(SMOKE + ["--beta", "0", "20", "--seed", "3", "--out", str(out1)]) == 0
    assert search.main(SMOKE + ["--beta", "0", "20", "--seed", "3", "--out", str(out2), "--no-plots"]) == 0
    r1, r2 = _report(out1), _report(out2)
    for key in ("accuracy", "losses"):
        assert r1["baseline"][key] == r2["baseline"][key]
    for a, b in zip(r1["runs"], r2["runs"]):
        assert a["choices"] == b["choices"] and a["accuracy"] == b["accuracy"]
        assert a["history"]["probs"] == b["history"]["probs"]
    low, high = r1["runs"]
    # β pushes the selection toward cheaper candidates
    assert high["cost"]["energy_mj"] < low["cost"]["energy_mj"]
    assert high["probabilities"]["b0_fc1"][0] < low["probabilities"]["b0_fc1"][0]
    for f in ("report.md", "plots/pareto.png", "plots/choices.png", "plots/breakdown.png", "checkpoints/baseline.pt"):
        assert (out1 / f).is_file(), f
    assert len(list((out1 / "plots").glob("probs_*.png"))) == 2
    for r in r1["runs"]:
        if r["integer_mode"]:
            assert r["agreement"] == 100.0
            cfg = load_config(r["export"])
            assert cfg.metadata["search"]["beta"] == r["beta"]
    md = (out1 / "report.md").read_text()
    assert "fp32 baseline" in md and "Per-layer choices" in md
    # resume reuses every phase and reproduces the report
    assert search.main(SMOKE + ["--beta", "0", "20", "--seed", "3", "--out", str(out1), "--resume", "--no-plots"]) == 0
    r3 = _report(out1)
    assert [r["accuracy"] for r in r3["runs"]] == [r["accuracy"] for r in r1["runs"]]


def test_torchrun_ddp_two_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "spikehq.search", *SMOKE,
           "--beta", "5", "--out", str(out), "--no-plots"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = _report(out)
    assert r["world_size"] == 2 and len(r["runs"]) == 1
    if r["runs"][0]["integer_mode"]:
        assert r["runs"][0]["agreement"] == 100.0
        assert load_network(out / "searched.json").config.time_steps == 4
