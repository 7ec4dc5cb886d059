"""The lanes policies of ``make gen`` (rtl/lanes.py): a pure function of the config."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from spikehq.golden.config import ConfigError, load_config
from spikehq.golden.network import load_network
from spikehq.rtl.lanes import apply_lanes, balanced_lanes
from spikehq.search.data import load_dataset

SEARCHED = Path("configs/digits_searched/searched.json")


def unmeasured(config):
    """The config's layers with no recorded activity."""
    return [dataclasses.replace(layer, input_events=None) for layer in config.layers]


def test_balanced_lanes_follow_work():
    config = load_config(SEARCHED)
    dense = balanced_lanes(unmeasured(config))            # every input equally likely to fire
    assert dense["rpe"] == 8 and dense["tok1"] == dense["tok2"] == 4 and dense["b0_q"] == 1
    assert balanced_lanes(unmeasured(config), 16)["rpe"] == 16
    events = {layer.name: layer.input_events for layer in config.layers}   # recorded by the export
    assert events["tok0"] > 0
    lanes = apply_lanes(config)
    work = {l.name: events[l.name] * l.kernel_size ** 2 * l.out_channels for l in config.layers}
    heaviest = max(work, key=work.get)
    assert lanes.layer(heaviest).lanes == 8
    for layer in lanes.layers:                            # no stage much slower than the heaviest
        assert layer.out_channels % layer.lanes == 0
        assert work[layer.name] / layer.lanes <= work[heaviest] / 8 * 1.0001 or layer.lanes == layer.out_channels
    assert balanced_lanes(list(config.layers)) != dense                    # the activity matters


def test_lanes_policies_and_their_errors():
    config = load_config(SEARCHED)
    assert apply_lanes(config, "config") is config
    explicit = apply_lanes(config, "b0_q=4,head=5")
    assert explicit.layer("b0_q").lanes == 4 and explicit.layer("head").lanes == 5
    assert explicit.layer("rpe").lanes == apply_lanes(config).layer("rpe").lanes
    for policy, message in [("b0_q=3", "b0_q=3 must divide its 64 output channels"),
                            ("nope=2", "no layer named 'nope'"),
                            ("b0_q", "expected balanced[:N], config or NAME=L"),
                            ("balanced:x", "expected balanced:<positive integer>")]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            apply_lanes(config, policy)


def test_attention_lanes_follow_the_q_layers_work(tmp_path):
    """Balanced: d·2·E_q of the busiest block against the heaviest PE (2 of 16 channels per head
    on the digits network, whose 8 default lanes left the units 6 % busy); ``config`` keeps the
    unit default; ``attention=L`` and the JSON's ``attention.lanes`` are kept; a lane count that
    does not divide the head dimension is a one-line error."""
    config = load_config(SEARCHED)
    events = {layer.name: layer.input_events for layer in config.layers}
    work = max(events[l.name] * l.kernel_size ** 2 * l.out_channels for l in config.layers)
    d = config.layer("b0_q").out_channels // config.graph.attention.heads
    need = max(8 * d * 2 * events[f"b{b}_q"] / work for b in range(config.graph.depth))
    lanes = apply_lanes(config).graph.attention.lanes
    assert lanes == min(l for l in range(1, d + 1) if d % l == 0 and l >= need) == 2
    assert apply_lanes(config, "balanced:16").graph.attention.lanes == 4
    assert apply_lanes(config, "config").graph.attention.lanes is None
    assert apply_lanes(config, "attention=8").graph.attention.lanes == 8
    with pytest.raises(ConfigError, match="attention=3 must divide the head dimension 16"):
        apply_lanes(config, "attention=3")
    raw = json.loads(SEARCHED.read_text())
    for layer in raw["layers"]:
        layer["weights"] = str((SEARCHED.parent / layer["weights"]).resolve())
    raw["metadata"]["network"]["attention"]["lanes"] = 4
    path = tmp_path / "searched.json"
    path.write_text(json.dumps(raw))
    assert apply_lanes(load_config(path)).graph.attention.lanes == 4
    raw["metadata"]["network"]["attention"]["lanes"] = 3
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"attention\.lanes: must divide the head dimension 16 \(channels / heads\), got 3"):
        load_config(path)


def test_explicit_json_lanes_are_kept(tmp_path):
    raw = json.loads(SEARCHED.read_text())
    raw["layers"][4]["lanes"] = 16
    for layer in raw["layers"]:
        layer["weights"] = str((SEARCHED.parent / layer["weights"]).resolve())
    path = tmp_path / "searched.json"
    path.write_text(json.dumps(raw))
    assert apply_lanes(load_config(path)).layer(raw["layers"][4]["name"]).lanes == 16


def test_recorded_input_events_are_the_golden_networks():
    """The committed config's input_events are what its export measured: the golden integer
    network on the first 32 digits training samples."""
    config = load_config(SEARCHED)
    assert config.metadata["activity"]["samples"] == 32
    train, _ = load_dataset("digits", time_steps=config.time_steps)
    measured = load_network(SEARCHED).input_events(train.frames[:32])
    assert measured == {layer.name: layer.input_events for layer in config.layers}


def test_lanes_without_activity_count_every_input(tmp_path):
    raw = json.loads(SEARCHED.read_text())
    for layer in raw["layers"]:
        layer["weights"] = str((SEARCHED.parent / layer["weights"]).resolve())
    del raw["layers"][3]["input_events"]                   # one layer unmeasured: dense work for all
    path = tmp_path / "searched.json"
    path.write_text(json.dumps(raw))
    config = load_config(path)
    assert config.layer("tok0").input_events is not None and config.layers[3].input_events is None
    assert balanced_lanes(list(config.layers)) == balanced_lanes(unmeasured(config))


def test_gen_imports_neither_torch_nor_sklearn(tmp_path):
    code = ("import sys; from spikehq.rtl.gen import generate; "
            f"generate({str(SEARCHED)!r}, {str(tmp_path / 'out')!r}, quiet=True); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn', 'scipy')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "out" / "manifest.json").is_file()
