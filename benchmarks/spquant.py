"""SpQuant-SNN on the digits: accuracy, eq. 28 memory and eq. 30 FLOPs with and without pruning.

``.venv/bin/python benchmarks/spquant.py`` trains the tiny spiking transformer on the digits
event frames once per variant (same seed, same per-layer schemes as the committed
``configs/digits_searched``: fp32 epochs, float QAT, integer QAT with frozen BatchNorm), then
prints one Markdown row per variant: the integer-mode accuracy on the 360 test samples, the
golden integer network's accuracy and agreement on the exported ``searched.json`` (every variant
that exports), the kept channels of the masked layers, the eq. 28 memory (weights +
membrane states + spikes, in KiB) and the eq. 30 FLOPs per sample, both relative to the first
variant, the generated PEs' memory bits, lanes, update-pass and spatial-prune-pass cycles per
sample, and the golden network's events (non-zero outputs of every engine) per inference, with
the export's spatial pruning and with its ``spatial_prune_k`` set to 0 (the downstream work the
pruning saves). ``--out DIR`` keeps the exports; ``--json FILE`` writes the figures.

Variants (docs/search.md "SpQuant-SNN"): ``quant`` (ternary membrane, the unpruned
Quant-SNN), ``channel`` (+ channel masks θ = 0.47), ``spatial`` (ternary membrane + spatial
pruning 0.35, in hardware), ``spquant`` (channel masks + spatial pruning 0.35: the paper's
setting; the two together do not export, so its sizes are those of its export without the
spatial pruning and it has no golden figures), ``sgp`` (ternary membrane with learnable
thresholds), ``binary`` (binary membrane).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

from spikehq.atomic import write_json_atomic
from spikehq.golden.config import load_config, load_weights
from spikehq.golden.network import load_network
from spikehq.rtl.pe import SpikingPE
from spikehq.search.cost import SpQuantLayer, candidate_name, shapes_from_config, spquant_flops, spquant_memory_bits
from spikehq.search.data import load_dataset
from spikehq.search.export import export_network, kept_channels
from spikehq.search.model import SpikingTransformer, preset_config
from spikehq.search.trainer import Distributed, Trainer, evaluate

CHOICES_FROM = Path(__file__).resolve().parent.parent / "configs" / "digits_searched" / "searched.json"
VARIANTS = {
    "quant": dict(membrane="ternary"),
    "channel": dict(membrane="ternary", channel_threshold=0.47),
    "spatial": dict(membrane="ternary", spatial_sparsity=0.35),
    "spquant": dict(membrane="ternary", channel_threshold=0.47, spatial_sparsity=0.35),
    "sgp": dict(membrane="ternary", threshold_learning="sgp"),
    "binary": dict(membrane="binary"),
}
STATE_BITS = {"ternary": 2, "binary": 1}


def _choices() -> dict[str, str]:
    return {l.name: candidate_name(l.scheme, l.bits) for l in load_config(CHOICES_FROM).layers}


def hardware_layers(searched: Path, spatial: dict[str, float]) -> list[SpQuantLayer]:
    """The exported layers as eq. 28/30 see them: stored state bits (integer membranes at their
    derived width), spike bits, the spatial share measured on the model."""
    out = []
    for layer, shape in zip((config := load_config(searched)).layers, shapes_from_config(config), strict=True):
        bits = STATE_BITS.get(layer.membrane) or layer.widths(load_weights(layer)).membrane_width
        out.append(SpQuantLayer(shape=shape, weight_bits=layer.bits, membrane_bits=bits,
                                spike_bits=2 if layer.spike_signed else 1,
                                spatial_sparsity=spatial.get(layer.name, 0.0)))
    return out


def hardware_figures(searched: Path) -> dict:
    """The generated PEs of an export: memory bits (weights, parameters, accumulators, spatial
    counts), lanes, the update pass's cycles per sample (``H'·W'·G`` per step) and the spatial
    prune passes' at most (``H'·W'·G + C + 6`` per step) over all layers."""
    config = load_config(searched)
    bits = lanes = update = prune = 0
    for layer in config.layers:
        pe = SpikingPE(layer=layer, weights=load_weights(layer))
        bits += (pe.weight_depth * pe.weight_word.size + layer.groups * pe.param_word.size
                 + pe.neuron_depth * pe.membrane_word.size + (pe.positions * pe.count_shape.width if pe.prune else 0))
        lanes += layer.lanes
        update += pe.neuron_depth * layer.time_steps
        prune += pe.prune_cycles[1] * layer.time_steps
    return {"pe_memory_bits": bits, "lanes": lanes, "update_cycles": update, "prune_cycles_at_most": prune}


def events_per_inference(searched: Path, frames: torch.Tensor) -> dict:
    """Golden events (non-zero outputs of every engine but the head's readout) per sample, with
    the export's spatial pruning and with every ``spatial_prune_k`` set to 0."""
    net = load_network(searched)
    plain = dataclasses.replace(net.config, layers=tuple(dataclasses.replace(l, spatial_prune_k=0)
                                                         for l in net.config.layers))
    out = {}
    for key, network in (("pruned", net), ("unpruned", type(net)(plain, net.weights))):
        activity = network.engine_activity(frames)
        out[key] = sum(a["spikes"] for name, a in activity.items() if name != "head") / len(frames)
    return out


def run_variant(name: str, options: dict, args, train, test, out: Path) -> dict:
    cfg = preset_config("tiny", time_steps=args.time_steps, classes=len(train.classes), **options)
    torch.manual_seed(args.seed)
    model = SpikingTransformer(cfg)
    trainer = Trainer(argparse.Namespace(lr=2e-3, batch_size=64, alpha_fraction=0.2, no_progress=args.no_progress),
                      Distributed(), train, test)
    t0 = time.time()
    model.set_choices("fp32")
    trainer.train_epochs(model, args.fp32_epochs, f"{name} fp32", seed=args.seed)
    model.init_scales()
    model.set_choices(_choices())
    trainer.train_epochs(model, args.qat_epochs, f"{name} QAT", seed=args.seed + 2)
    model.freeze_bn(True)
    trainer.train_epochs(model, args.int_epochs, f"{name} integer QAT", integer=True, seed=args.seed + 3)
    accuracy, preds = evaluate(model, test, integer=True)
    units = model.units()
    spatial = {n: 0.0 for n, u in units.items() if u.neuron.spatial_sparsity > 0}
    model.eval()
    with torch.no_grad():   # the measured share of pruned positions per conv layer (S_p of eq. 30)
        for i in range(0, len(test), 120):
            model(test.frames[i:i + 120].float(), integer=True)
            for n in spatial:
                spatial[n] += units[n].neuron.pruned_share * len(test.frames[i:i + 120]) / len(test)
    row = {"variant": name, "options": options, "accuracy": accuracy, "train_seconds": time.time() - t0,
           "kept_channels": {n: len(k) for n, k in kept_channels(model).items()},
           "thresholds": {n: float(torch.as_tensor(u.threshold()).detach()) for n, u in units.items()}
           if cfg.threshold_learning == "sgp" else {},
           "spatial_sparsity": spatial}
    exportable = cfg.spatial_sparsity == 0 or cfg.channel_threshold == 0
    if not exportable:   # sizes only: eq. 28 does not depend on the run-time spatial masks
        model.cfg = dataclasses.replace(cfg, spatial_sparsity=0.0)
        for unit in units.values():
            unit.neuron.spatial_sparsity = 0.0
    searched = export_network(model, out / name, name=f"spquant_{name}")
    if exportable:
        golden = load_network(searched).predict(test.frames)
        row["golden_accuracy"] = float((golden == test.labels).float().mean() * 100)
        row["agreement"] = float((golden == preds).float().mean() * 100)
        row["events"] = events_per_inference(searched, test.frames)
    layers = hardware_layers(searched, spatial)
    row["memory_bits"] = spquant_memory_bits(layers)
    row["flops"] = spquant_flops(layers, cfg.time_steps)
    row["hardware"] = hardware_figures(searched)
    return row


def table(rows: list[dict]) -> str:
    base = rows[0]
    lines = ["| variant | accuracy (int) | golden acc. / agreement | kept channels | eq. 28 memory KiB (w + u + s) "
             "| × | eq. 30 MFLOPs | × | PE memory kbit | lanes | update cycles | prune cycles ≤ "
             "| events/inference (k = 0) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["memory_bits"]
        kib = lambda b: b / 8192
        golden = (f"{r['golden_accuracy']:.2f} % / {r['agreement']:.1f} %" if "golden_accuracy" in r
                  else "— (does not export)")
        kept = ", ".join(f"{n} {k}" for n, k in r["kept_channels"].items()) or "all"
        events = (f"{r['events']['pruned']:.0f} ({r['events']['unpruned']:.0f})" if "events" in r else "—")
        lines.append(f"| {r['variant']} | {r['accuracy']:.2f} % | {golden} | {kept} | {kib(m['total']):.1f} "
                     f"({kib(m['weights']):.1f} + {kib(m['membranes']):.1f} + {kib(m['spikes']):.1f}) "
                     f"| {base['memory_bits']['total'] / m['total']:.2f} | {r['flops'] / 1e6:.3f} "
                     f"| {base['flops'] / r['flops']:.2f} | {r['hardware']['pe_memory_bits'] / 1000:.1f} "
                     f"| {r['hardware']['lanes']} | {r['hardware']['update_cycles']} "
                     f"| {r['hardware']['prune_cycles_at_most']} | {events} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="variants to train, the first is the reference of the × columns (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-steps", type=int, default=4)
    parser.add_argument("--fp32-epochs", type=int, default=8)
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--int-epochs", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=0, help="first N training samples only (0 = all)")
    parser.add_argument("--out", default=None, help="keep the exports here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, test = load_dataset("digits", time_steps=args.time_steps)
    if args.limit_train:
        train = train.subset(args.limit_train)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        for name in args.variants:
            rows.append(run_variant(name, VARIANTS[name], args, train, test, out))
            print(f"{name}: accuracy {rows[-1]['accuracy']:.2f} % in {rows[-1]['train_seconds']:.0f} s", flush=True)
            if args.json:   # after every variant, so a long run leaves its figures so far
                command = "benchmarks/spquant.py " + " ".join(sys.argv[1:] if argv is None else argv)
                write_json_atomic(Path(args.json), {"command": command, "rows": rows}, indent=1)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
