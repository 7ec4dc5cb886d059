"""``spikehq import-nir MODEL.nir --out DIR`` (also ``spikehq-import-nir``, ``make import-nir``)."""

from __future__ import annotations

import argparse
import sys

from .importer import NEURONS, SUPPORTED, SYNAPSES, ImportOptions, NirImportError, import_nir

__all__ = ["main"]


def _layer_scheme(text: str) -> tuple[str, str]:
    name, sep, scheme = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=SCHEME (e.g. conv1=pot-4), got {text!r}")
    return name, scheme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikehq import-nir",
        description="Import a NIR graph (snnTorch's or Norse's NIR export, or any NIR file) as a spikehq "
                    "network: OUT/searched.json (a feed-forward graph, golden/searched.schema.json) and "
                    "OUT/weights/<layer>.json, ready for make gen. Each synapse (" + ", ".join(SYNAPSES) +
                    ") with the neuron node it feeds (" + ", ".join(NEURONS) + ") becomes one hardware "
                    "layer, quantized to its scheme; SumPool2d/AvgPool2d become sum pooling, Flatten a "
                    "flatten, several edges into one node residual adds. Supported node types: "
                    + ", ".join(SUPPORTED) + ". Anything the hardware cannot express is refused with the "
                    "node and field named; nothing is written then. See docs/nir.md.")
    parser.add_argument("model", help="the NIR file (.nir, HDF5 as written by nir.write)")
    parser.add_argument("--out", required=True, help="output folder, replaced atomically")
    parser.add_argument("--name", default="nir", help="network name (Verilog module prefix; default: nir)")
    parser.add_argument("--time-steps", type=int, default=4, help="time steps per sample (default: 4)")
    parser.add_argument("--dt", type=float, default=1e-4,
                        help="the graph's time step: leak = 1 - dt/tau (default 1e-4, snnTorch's export; "
                             "Norse's to_nir(dt=d) needs --dt d and d = 1, see docs/nir.md)")
    parser.add_argument("--scheme", default="uniform-4",
                        help="weight scheme of every layer: uniform-4 (default), uniform-2, pot-4, pot-2")
    parser.add_argument("--layer-scheme", type=_layer_scheme, action="append", default=[], metavar="NAME=SCHEME",
                        help="scheme of one layer (NIR synapse name or layer name); repeatable")
    parser.add_argument("--round-leak", action="store_true",
                        help="round a leak 1 - dt/tau that is not a power of two to the nearest one "
                             "(an approximation; without it such a leak is refused)")
    args = parser.parse_args(argv)
    if args.time_steps < 1:
        parser.error(f"--time-steps: expected at least 1, got {args.time_steps}")
    options = ImportOptions(time_steps=args.time_steps, dt=args.dt, scheme=args.scheme,
                            layer_schemes=dict(args.layer_scheme), round_leak=args.round_leak, name=args.name)
    try:
        config = import_nir(args.model, args.out, options)
    except NirImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"imported {len(config.layers)} layer(s) of {args.model} as {config.name!r} into {args.out}: "
          + ", ".join(f"{l.name} ({l.scheme}-{l.bits})" for l in config.layers))
    return 0
