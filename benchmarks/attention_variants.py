"""SSA against A2OS2A on the digits: the committed search results side by side.

``.venv/bin/python benchmarks/attention_variants.py [CONFIG ...]`` (defaults:
``configs/digits_searched/searched.json`` and ``configs/digits_a2os2a/searched.json``) runs each
exported network's golden integer model on the 360 digits test samples and prints a Markdown
table: test accuracy (golden integer network), average weight bits, weight storage, and energy
per inference in both conventions of docs/search.md (``dense``; ``paper`` with every layer's input
spike rate measured here by the golden network), the attention inputs' value ranges and the
attention neurons' spike rates. ``--json PATH`` also writes the figures.

The energy model covers the conv/linear layers (docs/search.md); the attention product's
additions are in neither variant's figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from spikehq.golden.network import load_network
from spikehq.search.cost import candidate_name, layer_activity, network_cost, shapes_from_config
from spikehq.search.data import load_dataset

DEFAULT = ("configs/digits_searched/searched.json", "configs/digits_a2os2a/searched.json")


def figures(path: str) -> dict:
    """Accuracy, bits, storage, energy and attention activity of one exported network."""
    net = load_network(path)
    config, graph = net.config, net.graph
    _, test = load_dataset("digits", time_steps=config.time_steps)
    accuracy = float((net.predict(test.frames) == test.labels).float().mean() * 100)
    activity = net.engine_activity(test.frames)
    shapes = shapes_from_config(config)
    choices = {l.name: candidate_name(l.scheme, l.bits) for l in config.layers}
    bits = {l.name: l.activation_bits for l in config.layers}
    rates = {l.name: activity[l.name]["input_rate"] for l in config.layers}
    paper = network_cost(shapes, choices, config.time_steps, layer_activity(shapes, rates, bits))
    dense = network_cost(shapes, choices, config.time_steps)
    key = config.layer("b0_k").neuron
    return {
        "config": path, "variant": graph.attention.variant, "samples": len(test),
        "accuracy": accuracy, "recorded_accuracy": config.metadata.get("search", {}).get("accuracy"),
        "avg_bits": paper["avg_bits"], "storage_mb": paper["storage_mb"],
        "energy_mj": paper["energy_mj"], "dense_energy_mj": dense["energy_mj"],
        "qkv": {n: config.layer(f"b0_{n}").neuron.type for n in ("q", "k", "v")},
        "key_range": [0, key.value_max] if key.type == "relu" else ([-1, 1] if key.type == "ternary" else [0, 1]),
        "attention_threshold": graph.attention.threshold,
        "attention_spike_rate": {f"b{b}_attn": activity[f"b{b}_attn"]["spike_rate"] for b in range(graph.depth)},
    }


def table(rows: list[dict]) -> str:
    lines = ["| variant | q, k, v | key range | attention θ | accuracy % | avg weight bits | storage MB "
             "| energy mJ (paper) | energy mJ (dense) | attention spike rate |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spikes = ", ".join(f"{v:.3f}" for v in r["attention_spike_rate"].values())
        lines.append(f"| {r['variant']} | {', '.join(r['qkv'].values())} | {r['key_range']} | {r['attention_threshold']} "
                     f"| {r['accuracy']:.2f} | {r['avg_bits']:.2f} | {r['storage_mb']:.4f} | {r['energy_mj']:.5f} "
                     f"| {r['dense_energy_mj']:.5f} | {spikes} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="*", default=list(DEFAULT), help="exported searched.json files (Spikformer graphs)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        rows = [figures(c) for c in args.configs]
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
