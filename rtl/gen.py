"""``make gen``: searched.json → one Verilog module per layer, the network top (for an exported
Spikformer), a JSON manifest, weight init data.

Usage: ``python -m spikehq.rtl.gen --config configs/example_tiny.json --out build/gen``

The output folder is written atomically (built beside the target, then renamed into place) and
is byte-identical for the same config: no timestamps, no absolute paths, no source locations.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from amaranth import Shape
from amaranth.lib import data
from tqdm import tqdm

from ..atomic import atomic_directory
from ..golden.config import ConfigError, LayerConfig, LayerWeights, NetworkConfig, load_config, load_weights
from .axis import AxisNetwork
from .lanes import apply_lanes
from .network import SpikingNetwork, check_hardware
from .pe import SpikingPE, param_rows, weight_rows
from .verilog import to_verilog

__all__ = ["generate", "main", "module_name", "port_list", "layer_manifest"]

MANIFEST_FORMAT = "spikehq-manifest"


def module_name(network: NetworkConfig, layer: LayerConfig) -> str:
    return f"spikehq_{network.name}_{layer.name}"


def port_list(pe: SpikingPE) -> list[dict]:
    """Verilog ports of a PE as Amaranth names them, with struct payload fields and offsets."""
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    for path, member, _ in pe.signature.flatten(pe):
        entry = {"name": "__".join(map(str, path)), "direction": member.flow.name.lower(),
                 "width": Shape.cast(member.shape).width}
        if isinstance(member.shape, data.StructLayout):
            entry["fields"] = {name: {"offset": field.offset, "width": Shape.cast(field.shape).width,
                                      "signed": Shape.cast(field.shape).signed}
                               for name, field in member.shape}
        ports.append(entry)
    return ports


def _hex_rows(rows: list[list[int]], bits: int) -> str:
    """$readmemh text: one memory word per line, lane 0 in the least significant bits."""
    digits = max((bits * len(rows[0]) + 3) // 4, 1) if rows else 1
    lines = []
    for row in rows:
        word = 0
        for lane, code in enumerate(row):
            word |= (code & ((1 << bits) - 1)) << (lane * bits)
        lines.append(f"{word:0{digits}x}")
    return "\n".join(lines) + "\n"


def layer_manifest(network: NetworkConfig, layer: LayerConfig, pe: SpikingPE | None) -> dict:
    entry = {"name": layer.name, "kind": layer.kind, "scheme": layer.scheme, "bits": layer.bits,
             "group": layer.group}
    if pe is None:
        entry.update(hardware=False,
                     reason="fp32 layers have no integer datapath; run this layer on the host "
                            "(docs/arithmetic.md §9)")
        return entry
    w = pe.widths
    entry.update(
        hardware=True, module=module_name(network, layer), verilog=f"{module_name(network, layer)}.v",
        weights_hex=f"{layer.name}.weights.hex" if pe.weights is not None else None,
        parameters={
            "in_channels": layer.in_channels, "out_channels": layer.out_channels,
            "kernel_size": layer.kernel_size, "padding": layer.padding,
            "height": layer.height, "width": layer.width,
            "out_height": layer.out_height, "out_width": layer.out_width,
            "activation_bits": layer.activation_bits, "lanes": layer.lanes,
            "neuron": layer.neuron.type, "threshold": layer.neuron.threshold,
            "leak_shift": layer.neuron.leak_shift, "reset": layer.neuron.reset,
            "membrane": layer.membrane, "time_steps": layer.time_steps,
            **({"key_bits": layer.neuron.bits} if layer.neuron.type == "relu" else {}),
            **({"spatial_prune_k": layer.spatial_prune_k} if pe.prune else {}),
        },
        widths={"current": w.current_width, "membrane": w.membrane_width, "bias": w.bias_width,
                "threshold": w.threshold_width, "weight_max_abs": w.weight_max_abs,
                "current_bound": w.current_bound, "membrane_bound": w.membrane_bound},
        memories={
            "weights": {"depth": pe.weight_depth, "word_bits": pe.weight_word.size,
                        "init": pe.weights is not None},
            "params": {"depth": layer.groups, "word_bits": pe.param_word.size},
            "membranes": {"depth": pe.neuron_depth, "word_bits": pe.membrane_word.size},
            **({"counts": {"depth": pe.positions, "word_bits": pe.count_shape.width}} if pe.prune else {}),
        },
        cycles={"per_input_event": layer.kernel_size ** 2 * layer.groups,
                "per_idle_gap_before_event": 1, "per_lane_group_update": 1, "per_output_spike_at_most": 2,
                "per_step_overhead_at_most": pe.STEP_OVERHEAD_CYCLES, "after_reset": pe.cycles_after_reset,
                **({"per_step_spatial_prune": list(pe.prune_cycles)} if pe.prune else {})},
        ports=port_list(pe),
    )
    return entry


def top_manifest(network: NetworkConfig, top: SpikingNetwork) -> dict:
    graph = top.graph
    entry = {"module": f"spikehq_{network.name}_top", "verilog": f"spikehq_{network.name}_top.v",
             "architecture": graph.architecture, "engines": list(graph.layer_names),
             "trace": top.traced if top.trace else None,
             "lanes": {name: layer.lanes for name, layer in top.layers.items()},
             "stream_fifo": graph.stream_fifo,
             "shared_roms": [{"module": f"shared_rom{i}", "width": pair.width, "depth": pair.depth,
                              "ports": [{"engine": bank.owner, "bank": bank.index, "words": bank.depth,
                                         "width": bank.width, "offset": offset}
                                        for bank, offset in ((pair.first, 0), (pair.second, pair.offset))]}
                             for i, pair in enumerate(top.rom_pairs)]}
    if graph.architecture == "feedforward":
        entry["graph"] = [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "shape": list(n.shape),
                           "value_range": list(n.value_range)} for n in graph.nodes]
        entry["output"] = (f"o_result: {{scores[classes], label}}, one per sample: the spikes of layer "
                           f"{graph.output!r} counted per class over steps and pixels, label = first maximum")
    else:
        att = graph.attention
        entry["attention"] = {"variant": att.variant, "heads": att.heads, "threshold": att.threshold,
                              "neuron": {"type": att.neuron.type, "leak_shift": att.neuron.leak_shift,
                                         "reset": att.neuron.reset},
                              "membrane": att.membrane,
                              "lanes": top.attention_lanes}
        entry["output"] = "o_result: {scores[classes], label}, one per sample"
    entry["input"] = ("i_events: one sample = T steps of frame events (y, x, c=polarity, value=1) each "
                      "closed by an end token")
    entry["ports"] = port_list(top)
    return entry


def _network_top(network: NetworkConfig, weights: dict[str, LayerWeights], trace: bool, share_roms: bool):
    """The whole-network core when ``network`` has a graph, else (None, reason)."""
    if network.graph is None:
        return None, "no metadata.network graph (not a spikehq search export): layers only"
    check_hardware(network)                 # clear ConfigError before any weights are missing
    for name in network.graph.layer_names:
        if weights.get(name) is None:
            raise ConfigError(f"{network.where}: layer {name!r}: no weights file")
    return SpikingNetwork(config=network, weights=weights, trace=trace, share_roms=share_roms), None


WRAPPERS = ("none", "axis")
WAIVERS = Path(__file__).parent / "lint_waivers.vlt"
FUSESOC_VERSION = "0.1.0"


def axis_manifest(network: NetworkConfig, wrapper: AxisNetwork) -> dict:
    """The AXI4-Stream wrapper's module, ports and TDATA packing (rtl/axis.py)."""
    fields = lambda layout: {name: {"offset": f.offset, "width": Shape.cast(f.shape).width} for name, f in layout}
    return {"module": f"spikehq_{network.name}_axis", "verilog": f"spikehq_{network.name}_axis.v",
            "s_axis_tdata": {"width": len(wrapper.s_axis_tdata), "fields": fields(wrapper.beat),
                             "frame": "one sample: its events and end beats, step by step; tlast on the last end beat"},
            "m_axis_tdata": {"width": len(wrapper.m_axis_tdata), "fields": fields(wrapper.result),
                             "frame": "one beat per sample (tlast = 1)"},
            "ports": port_list(wrapper)}


def fusesoc_core(network: NetworkConfig, manifest: dict) -> str:
    """A FuseSoC CAPI2 core: the top (the AXI4-Stream wrapper when generated) as ``rtl``, the
    per-layer modules as ``layers``, the weight init data as ``weights``, the Verilator waivers
    (rtl/lint_waivers.vlt, copied beside it); targets ``default`` and ``lint`` (Verilator
    ``--lint-only -Wall`` with the waivers)."""
    top = manifest.get("wrapper") or manifest["top"]
    layers = [e["verilog"] for e in manifest["layers"] if e["hardware"]]
    hexes = [e["weights_hex"] for e in manifest["layers"] if e["hardware"] and e["weights_hex"]]
    listing = lambda files: "\n".join(f"      - {f}" for f in files)
    return f"""CAPI=2:
# generated by spikehq (make gen): {network.name}
name: spikehq:net:{network.name}:{FUSESOC_VERSION}
description: spikehq spiking network {network.name} ({top['module']})

filesets:
  rtl:
    files:
{listing([top['verilog']])}
    file_type: verilogSource
  layers:
    files:
{listing(layers)}
    file_type: verilogSource
  waivers:
    files:
      - {WAIVERS.name}
    file_type: vlt
  weights:
    files:
{listing(hexes or ["manifest.json"])}
    file_type: user

targets:
  default:
    filesets: [rtl, weights]
    toplevel: {top['module']}
  lint:
    default_tool: verilator
    filesets: [waivers, rtl]
    toplevel: {top['module']}
    tools:
      verilator:
        mode: lint-only
        verilator_options: [-Wall]
"""


def generate(config_path: str | Path, out_dir: str | Path, *, probe: bool = False, trace: bool = False,
             lanes: str = "balanced", quiet: bool = False, wrapper: str = "none", share_roms: bool = True) -> dict:
    """Generate everything for ``config_path`` into ``out_dir`` (replaced atomically).
    ``wrapper="axis"`` adds the AXI4-Stream wrapper of the network top (rtl/axis.py);
    ``share_roms=False`` keeps every weight ROM bank in its PE (rtl/network.py)."""
    if wrapper not in WRAPPERS:
        raise ConfigError(f"wrapper: expected one of {', '.join(WRAPPERS)}, got {wrapper!r}")
    network = apply_lanes(load_config(config_path), lanes)
    weights: dict[str, LayerWeights] = {}
    with atomic_directory(out_dir) as staging:
        manifest = {"format": MANIFEST_FORMAT, "version": 1, "network": network.name,
                    "time_steps": network.time_steps,
                    "config_sha256": hashlib.sha256(Path(config_path).read_bytes()).hexdigest(),
                    "probe": probe, "layers": []}
        for layer in tqdm(network.layers, desc="generating", unit="layer", disable=quiet):
            if not layer.is_hardware:
                print(f"warning: layer {layer.name!r} is fp32: no hardware generated (docs/arithmetic.md §9)",
                      file=sys.stderr)
                manifest["layers"].append(layer_manifest(network, layer, None))
                continue
            weights[layer.name] = layer_weights = load_weights(layer)
            pe = SpikingPE(layer=layer, weights=layer_weights, probe=probe)
            manifest["layers"].append(layer_manifest(network, layer, pe))
            text = to_verilog(pe, module_name(network, layer))
            (staging / f"{module_name(network, layer)}.v").write_text(text)
            if layer_weights is not None:
                _write_init(staging, layer, layer_weights)
        top, reason = _network_top(network, weights, trace, share_roms)
        if top is None:
            manifest["top"] = {"module": None, "reason": reason}
        else:
            if not quiet:
                print(f"generating the network top ({len(top.graph.layer_names)} engines)", file=sys.stderr)
            manifest["top"] = top_manifest(network, top)
            (staging / manifest["top"]["verilog"]).write_text(
                to_verilog(top, manifest["top"]["module"]))
            if wrapper == "axis":
                axis = AxisNetwork(config=network, weights=weights, share_roms=share_roms)
                manifest["wrapper"] = axis_manifest(network, axis)
                (staging / manifest["wrapper"]["verilog"]).write_text(to_verilog(axis, manifest["wrapper"]["module"]))
            manifest["fusesoc"] = f"spikehq_{network.name}.core"
            (staging / WAIVERS.name).write_text(WAIVERS.read_text())
            (staging / manifest["fusesoc"]).write_text(fusesoc_core(network, manifest))
        if wrapper != "none" and top is None:
            raise ConfigError(f"{network.where}: --wrapper {wrapper} needs the network top ({reason})")
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _write_init(folder: Path, layer: LayerConfig, weights: LayerWeights) -> None:
    (folder / f"{layer.name}.weights.hex").write_text(_hex_rows(weight_rows(layer, weights), layer.bits))
    params = [[(p["bias"], p["threshold"]) for p in row] for row in param_rows(layer, weights)]
    (folder / f"{layer.name}.params.json").write_text(json.dumps(
        {"layout": "rows of lane groups, each lane [bias, threshold]", "rows": params}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikehq-gen",
        description="Generate Verilog for every layer of a searched.json: one processing element "
                    "module per conv/linear layer (fp32 layers are skipped and listed in the "
                    "manifest), for a network exported by the search also the whole-network top "
                    "spikehq_<net>_top.v (event frames in, class scores out), manifest.json "
                    "(modules, ports, parameters, widths, memories, lanes) and weight init data "
                    "($readmemh hex). Output is byte-identical on rerun.")
    parser.add_argument("--config", required=True, help="path to searched.json (see golden/searched.schema.json)")
    parser.add_argument("--out", default="build/gen", help="output folder, replaced atomically (default: build/gen)")
    parser.add_argument("--probe", action="store_true",
                        help="add a membrane_probe read port to every PE (for verification)")
    parser.add_argument("--trace", action="store_true",
                        help="add o_trace (spike counts per engine per step) to the network top (for verification)")
    parser.add_argument("--lanes", default="balanced", metavar="POLICY",
                        help="lanes per layer: 'balanced' (default: proportional to each layer's work, i.e. input "
                             "events x k^2 x C_out, events from the layers' input_events (the search's export "
                             "measures them), else every input counted; ceiling 8, "
                             "'balanced:16' for another), 'config' (the config's lanes), or NAME=L[,NAME=L...] "
                             "(the rest balanced); layers with lanes in the JSON keep them")
    parser.add_argument("--wrapper", default="none", choices=WRAPPERS,
                        help="'axis': also spikehq_<net>_axis.v, the network top behind AXI4-Stream slave and "
                             "master ports with TLAST (one frame per sample; packing in manifest.json 'wrapper' "
                             "and rtl/axis.py); the FuseSoC core then names it as its top")
    parser.add_argument("--share-roms", action=argparse.BooleanOptionalAction, default=True,
                        help="pair small weight ROM banks of two PEs on the two ports of one block RAM in the "
                             "network top (default on; manifest.json 'top.shared_roms'; --no-share-roms: every "
                             "bank in its PE, for A/B comparisons)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        manifest = generate(args.config, args.out, probe=args.probe, trace=args.trace, lanes=args.lanes,
                            quiet=args.quiet, wrapper=args.wrapper, share_roms=args.share_roms)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    built = [entry for entry in manifest["layers"] if entry["hardware"]]
    top = manifest["top"]["module"]
    axis = manifest.get("wrapper", {}).get("module")
    print(f"wrote {len(built)} layer module(s){' and the network top ' + top if top else ''}"
          f"{' with its AXI4-Stream wrapper ' + axis if axis else ''}{' and ' + manifest['fusesoc'] if top else ''} "
          f"for {manifest['network']!r} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
