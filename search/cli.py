"""SpikeHQ heterogeneous quantization search: ``python -m spikehq.search`` / ``spikehq-search``.

Pipeline (docs/search.md):

1. **fp32 baseline** trained for the whole budget (warm-up + search + QAT epochs); its weights
   after the warm-up epochs are the starting point of every search (so the baseline and the
   searched models see the same number of epochs).
2. For each β: **search** — every conv/linear is a Gumbel-softmax mixture of its 5 candidates;
   per batch, Step 1 updates the selection logits α on a held-out part of the training set
   with the hard (one-hot, straight-through) sample and loss CE + β·hardware, Step 2 updates
   the weights on the rest with the soft sample; the temperature anneals exponentially.
   Final choice per layer: argmax α.
3. **QAT** of the chosen configuration: float epochs, then (when no layer is fp32) epochs in
   integer mode (BatchNorm frozen and folded, integer thresholds/biases, floor leak), so the
   exported integer network reproduces the model's predictions.
4. **Export** ``searched.json`` + integer weights per β, check the golden integer network
   against the QAT model on the test set, and write the report (markdown, JSON, plots).

Runs under ``torchrun --nproc_per_node N`` with DistributedDataParallel (gloo on CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import write_atomic
from ..golden.network import load_network
from . import report as report_mod
from . import quantize
from .cost import (CANDIDATES, COSTS, candidate_scheme, layer_activity, layer_energy_pj, layer_ops, network_cost,
                   op_energy_pj, rates_by_role)
from .data import load_dataset
from .fpga_cost import TARGETS as FPGA_TARGETS, FpgaCostError, candidate_cost, load_model, search_lanes
from .export import export_network
from .model import SpikingTransformer, paper_layers, preset_config
from .trainer import Distributed, Trainer, evaluate, save_checkpoint

__all__ = ["main", "parse_args", "build_parser", "run", "SearchError"]

DEFAULT_BETAS = (0.1, 0.5, 2.0)
DEFAULT_SEEDS = (0, 1, 2)
ACTIVITY_SAMPLES = 32       # training samples the export measures each layer's input events on


class SearchError(ValueError):
    pass


# ---- command line ------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, non-zero exit
        self.exit(2, f"spikehq-search: error: {message}\n")


def _positive_int(name):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected an integer, got {text!r}") from None
        if v < 0 or (v == 0 and name not in ("--int-epochs", "--qat-epochs", "--warmup-epochs", "--limit-train", "--limit-test", "--seeds")):
            raise argparse.ArgumentTypeError(f"{name}: expected an integer >= {0 if v == 0 else 1}, got {v}")
        return v
    return parse


def _positive_float(name, allow_zero=False, share=False):
    """A number > 0 (``allow_zero``: >= 0); ``share``: a number in [0, 1)."""
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected a number, got {text!r}") from None
        if share and not 0 <= v < 1:
            raise argparse.ArgumentTypeError(f"{name}: expected a number in [0, 1), got {text}")
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"{name}: expected a number {'>=' if allow_zero else '>'} 0, got {text}")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="spikehq-search",
        description="SpikeHQ heterogeneous quantization search for a spiking transformer: trains an fp32 "
                    "baseline, searches one of fp32/pot2/pot4/uni2/uni4 per conv/linear layer for each β "
                    "(CE + β·hardware loss, Gumbel-softmax, bi-level), fine-tunes the choice with QAT, exports "
                    "searched.json + integer weights (input of `make gen`), checks the golden integer model "
                    "against the QAT model and writes report.md/report.json and plots.",
        epilog="Outputs in OUT: report.md, report.json, plots/*.png, seed_<s>/beta_<β>/searched.json (+ weights/), "
               "searched.json + weights/ of the selected β (selected on the means over seeds; its most accurate seed "
               "without dead engines), seed_<s>/checkpoints/*.pt. Multi-process: "
               "torchrun --nproc_per_node 2 -m spikehq.search ... (gloo on CPU, nccl on GPU).")
    g = p.add_argument_group("model and data")
    g.add_argument("--preset", default="tiny", choices=("tiny", "paper"),
                   help="tiny: CPU-sized for the 8×8 digits (default); paper: Spikformer-2-256 for DVS, T=16")
    g.add_argument("--dataset", default="digits", choices=("digits", "dvs128", "cifar10dvs", "ncaltech101"),
                   help="digits = scikit-learn digits as event frames (embedded, default); others read --data-root")
    g.add_argument("--data-root", default=None, help="folder of a DVS data set in its distribution format")
    g.add_argument("--image-size", type=_positive_int("--image-size"), default=None,
                   help="frame side for DVS sets (default: the preset's)")
    g.add_argument("--time-steps", type=_positive_int("--time-steps"), default=None, help="T (default: the preset's)")
    g.add_argument("--depth", type=_positive_int("--depth"), default=None, help="number of transformer blocks L")
    g.add_argument("--heads", type=_positive_int("--heads"), default=None, help="attention heads")
    g.add_argument("--attention", choices=("ssa", "a2os2a"), default="ssa",
                   help="SSA (binary Q,K,V, scale) or A2OS2A (binary Q, integer ReLU K, ternary V, no scale)")
    g.add_argument("--key-bits", type=_positive_int("--key-bits"), default=None,
                   help="A2OS2A: bits of the integer ReLU key, K in [0, 2^bits - 1] (1..4; default 2)")
    g.add_argument("--key-step", type=_positive_float("--key-step"), default=None,
                   help="A2OS2A: float size of one key level, K = clip(floor(ReLU(y)/step)) (default 0.5)")
    g.add_argument("--neuron", choices=("lif", "ternary"), default="lif", help="layer neurons")
    g.add_argument("--membrane", choices=("float", "ternary", "binary"), default="float",
                   help="full-precision membrane, the SpQuant ternary membrane, or SpQuant's binary membrane "
                        "(ternary with the -1 level pruned, eq. 19-20; binary LIF neurons only)")
    q = p.add_argument_group("SpQuant-SNN (docs/search.md)")
    q.add_argument("--threshold-learning", choices=("fixed", "sgp"), default="fixed",
                   help="fixed V_th, or a learnable layer-wise V_th trained through SpQuant's separate gradient "
                        "path with the sigmoid gradient penalty window (eq. 24-27); folded into the per-channel "
                        "integer thresholds at export")
    share = lambda name: _positive_float(name, allow_zero=True, share=True)
    q.add_argument("--spatial-sparsity", type=share("--spatial-sparsity"), default=0.0,
                   help="share of positions pruned every step in the conv layers by membrane importance "
                        "(eq. 21-22; the paper uses 0.35; 0 = off). Exported as each conv layer's spatial_prune_k; "
                        "the PE ranks and prunes positions itself every step (docs/arithmetic.md 6.1). A model whose "
                        "channel masks (--channel-threshold) also remove tokenizer channels does not export")
    q.add_argument("--channel-threshold", type=share("--channel-threshold"), default=0.0,
                   help="channel masks from the membrane-potential prior (eq. 23) on tok0..tok(n-2) and every "
                        "fc1: keep a channel when its keep probability is >= this (the paper uses 0.47; 0 = off). "
                        "Masked channels leave the exported layers")
    g.add_argument("--limit-train", type=_positive_int("--limit-train"), default=0,
                   help="use only the first N training samples (0 = all; for smoke tests)")
    g.add_argument("--limit-test", type=_positive_int("--limit-test"), default=0,
                   help="use only the first N test samples (0 = all)")
    s = p.add_argument_group("search")
    s.add_argument("--beta", type=_positive_float("--beta", allow_zero=True), nargs="+", default=list(DEFAULT_BETAS),
                   help=f"hardware-loss weight(s); several values make a β sweep (default {' '.join(map(str, DEFAULT_BETAS))})")
    s.add_argument("--warmup-epochs", type=_positive_int("--warmup-epochs"), default=8,
                   help="fp32 epochs before the search starts (default 8)")
    s.add_argument("--search-epochs", type=_positive_int("--search-epochs"), default=4, help="search epochs (default 4)")
    s.add_argument("--qat-epochs", type=_positive_int("--qat-epochs"), default=3,
                   help="float QAT epochs of the chosen configuration (default 3)")
    s.add_argument("--int-epochs", type=_positive_int("--int-epochs"), default=2,
                   help="integer-mode QAT epochs (frozen folded BatchNorm; default 2)")
    s.add_argument("--batch-size", type=_positive_int("--batch-size"), default=64, help="per process (default 64)")
    s.add_argument("--lr", type=_positive_float("--lr"), default=2e-3, help="AdamW learning rate (default 2e-3)")
    s.add_argument("--alpha-lr", type=_positive_float("--alpha-lr"), default=0.05,
                   help="Adam learning rate of the selection logits (default 0.05)")
    s.add_argument("--alpha-fraction", type=_positive_float("--alpha-fraction"), default=0.2,
                   help="share of the training set held out for Step 1 (default 0.2)")
    s.add_argument("--tau-start", type=_positive_float("--tau-start"), default=5.0, help="initial Gumbel temperature")
    s.add_argument("--tau-end", type=_positive_float("--tau-end"), default=0.2, help="final Gumbel temperature")
    s.add_argument("--cost", choices=(*COSTS, "fpga"), default="paper",
                   help="hardware cost of the search: paper = spike activity measured on the data (accumulates per "
                        "input spike, dense MACs for multi-bit inputs and the first layer; default), dense = every "
                        "layer's dense multiply-accumulates, fpga = area of the generated PEs on --target (LUT eq. "
                        "+ block RAM and DSP at their device share) from the fitted model search/data/"
                        "fpga_cost_<target>.json (make fit-fpga-cost; docs/search.md)")
    s.add_argument("--target", choices=FPGA_TARGETS, default="ecp5",
                   help="FPGA family of --cost fpga (default ecp5): its model file must exist (make fit-fpga-cost TARGET=...)")
    s.add_argument("--max-drop", type=_positive_float("--max-drop", allow_zero=True), default=1.0,
                   help="accuracy points a β may lose to be selected as the exported result (default 1.0, the paper's <1 %%)")
    o = p.add_argument_group("run")
    o.add_argument("--seeds", type=_positive_int("--seeds"), nargs="+", default=list(DEFAULT_SEEDS),
                   help=f"random seeds; every seed runs the baseline and the whole β sweep, the report gives "
                        f"mean ± std over seeds (default {' '.join(map(str, DEFAULT_SEEDS))})")
    o.add_argument("--out", default="build/search", help="output folder (default build/search)")
    o.add_argument("--jobs", type=_positive_int("--jobs"), default=3,
                   help="seeds run at once in separate processes, one torch thread each (default 3: the default "
                        "seeds all at once; 1 under torchrun). Results do not depend on it")
    o.add_argument("--threads", type=_positive_int("--threads"), default=1,
                   help="torch threads per process (default 1: small layers gain little from more)")
    o.add_argument("--resume", action="store_true", help="reuse finished phases from OUT/checkpoints")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("--no-plots", action="store_true", help="skip the plots (report.md and report.json only)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.alpha_fraction >= 1:
        p.error(f"--alpha-fraction: expected a number in (0, 1), got {args.alpha_fraction}")
    if args.membrane == "binary" and args.neuron != "lif":
        p.error("--membrane: binary silences the -1 spikes of ternary neurons (SpQuant eq. 20); use --neuron lif")
    if args.key_bits is not None and args.key_bits > 4:
        p.error(f"--key-bits: expected an integer in 1..4, got {args.key_bits}")
    if args.attention != "a2os2a" and (args.key_bits is not None or args.key_step is not None):
        p.error("--key-bits/--key-step: only for --attention a2os2a")
    if args.tau_end > args.tau_start:
        p.error(f"--tau-end: expected at most --tau-start ({args.tau_start}), got {args.tau_end}")
    if args.dataset != "digits" and args.data_root is None:
        p.error(f"--data-root: required for --dataset {args.dataset} (local files; nothing is downloaded)")
    if args.dataset == "digits" and args.image_size not in (None, 8):
        p.error(f"--image-size: the digits are 8x8, got {args.image_size}")
    if len(set(args.beta)) != len(args.beta):
        p.error("--beta: values must be distinct")
    if len(set(args.seeds)) != len(args.seeds):
        p.error("--seeds: values must be distinct")
    if args.cost == "fpga":
        try:
            load_model(args.target)
        except FpgaCostError as e:
            p.error(str(e))
    return args



# ---- the whole run -----------------------------------------------------------------------------

def _config_hash(args, seed: int, phase: str, extra: str = "") -> str:
    keys = ("preset", "dataset", "data_root", "image_size", "time_steps", "depth", "heads", "attention", "neuron",
            "membrane", "threshold_learning", "spatial_sparsity", "channel_threshold", "limit_train", "limit_test",
            "warmup_epochs", "search_epochs", "qat_epochs", "int_epochs",
            "batch_size", "lr", "alpha_lr", "alpha_fraction", "tau_start", "tau_end", "cost")
    if args.attention == "a2os2a":
        keys += ("key_bits", "key_step")
    fpga = {"target": args.target} if args.cost == "fpga" else {}
    text = json.dumps({**{k: getattr(args, k) for k in keys}, **fpga, "seed": seed}, sort_keys=True) + phase + extra
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _beta_tag(beta: float) -> str:
    return f"beta_{beta:g}".replace(".", "p")


@dataclass
class _Setup:
    """What every seed shares: data, model config, layer shapes, trainer, logger."""
    args: argparse.Namespace
    dist: Distributed
    train: object
    test: object
    cfg: object
    shapes: list
    T: int
    trainer: Trainer
    log: object


def _costs(setup: _Setup, choices, rates: dict[str, float], activation_bits: dict[str, int]) -> dict:
    """The configuration's cost under both conventions (``rates``: measured input spike rates),
    and under ``fpga`` when the search minimizes it."""
    activity = layer_activity(setup.shapes, rates, activation_bits)
    out = {"dense": network_cost(setup.shapes, choices, setup.T),
           "paper": network_cost(setup.shapes, choices, setup.T, activity)}
    if setup.args.cost == "fpga":
        out["fpga"] = fpga_network_cost(setup.shapes, choices, setup.T, rates, activation_bits,
                                        load_model(setup.args.target))
    return out


def fpga_network_cost(shapes, choices, time_steps: int, rates: dict[str, float], activation_bits: dict[str, int],
                      model: dict) -> dict:
    """``network_cost``'s dict (storage, bits, groups, layers) with the energy of the FPGA model
    (pJ per inference → mJ) and its totals: LUT eq., FF, DSP, block RAM (bits), area in LUT eq.;
    lanes as make gen's balanced policy would choose them from ``rates``."""
    out = network_cost(shapes, choices, time_steps)
    lanes = search_lanes(shapes, rates, activation_bits, time_steps)
    totals = dict.fromkeys(("lut_equiv", "ff", "dsp", "bram", "bram_bits", "area"), 0.0)
    for g in out["groups"].values():
        g["energy_mj"] = 0.0
    out["energy_mj"] = 0.0
    for shape, row in zip(shapes, out["layers"]):
        pred = candidate_cost(shape, row["candidate"], model, activation_bits=activation_bits[shape.name],
                              lanes=lanes[shape.name], time_steps=time_steps, input_rate=rates[shape.name])
        row.update(energy_mj=pred["energy_pj"] * 1e-9, lanes=lanes[shape.name],
                   fpga={k: round(pred[k], 3) for k in (*totals, "energy_per_cycle_pj", "cycles")})
        out["groups"][shape.group]["energy_mj"] += row["energy_mj"]
        out["energy_mj"] += row["energy_mj"]
        for k in totals:
            totals[k] += pred[k]
    out.update(convention="fpga", target=model["target"], fpga=totals)
    return out


def _run_seed(setup: _Setup, seed: int, out: Path) -> dict:
    """Baseline, β sweep, exports and golden checks of one seed, in ``out`` (= OUT/seed_<seed>)."""
    args, dist, train, test, T, log = setup.args, setup.dist, setup.train, setup.test, setup.T, setup.log
    trainer, shapes = setup.trainer, setup.shapes
    ckpt_dir = out / "checkpoints"
    t_start = time.time()

    def new_model():
        torch.manual_seed(seed)
        return SpikingTransformer(setup.cfg)

    # ---- fp32 baseline (full budget) and warm start --------------------------------------
    budget = args.warmup_epochs + args.search_epochs + args.qat_epochs + args.int_epochs
    base_ckpt = ckpt_dir / "baseline.pt"
    h_base = _config_hash(args, seed, "baseline")
    model = new_model()
    if args.resume and base_ckpt.is_file() and torch.load(base_ckpt, weights_only=False)["hash"] == h_base:
        ck = torch.load(base_ckpt, weights_only=False)
        model.load_state_dict(ck["state"])
        warm_state, base_losses = ck["warm"], ck["losses"]
        log(f"seed {seed}: baseline resumed from checkpoint")
    else:
        model.set_choices("fp32")
        snapshot = {}

        def keep_warm(epoch):
            if epoch == args.warmup_epochs - 1:
                snapshot["warm"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        base_losses = trainer.train_epochs(model, budget, f"seed {seed} fp32 baseline", seed=seed, on_epoch=keep_warm)
        warm_state = snapshot.get("warm") or {k: v.detach().clone() for k, v in new_model().state_dict().items()}
        if dist.main:
            save_checkpoint({"hash": h_base, "state": model.state_dict(), "warm": warm_state, "losses": base_losses},
                            base_ckpt)
    model.set_choices("fp32")
    bits = model.activation_bits()
    base_acc, _ = evaluate(model, test)
    base_rates = model.input_rates(test.frames)
    base_costs = _costs(setup, "fp32", base_rates, bits)
    # the search's hardware loss: the warm-start model's rates on the Step-1 (α) samples
    warm = new_model()
    warm.load_state_dict(warm_state)
    warm.set_choices("fp32")
    warm_rates = warm.input_rates(train.frames[trainer.alpha_idx]) if args.cost != "dense" else None
    search_activity = layer_activity(shapes, warm_rates, bits) if args.cost == "paper" else None
    if args.cost == "fpga":     # area of each candidate's PE, lanes as make gen would give them
        fpga, lanes = load_model(args.target), search_lanes(shapes, warm_rates, bits, T)
        layer_cost = lambda shape, c: candidate_cost(shape, c, fpga, activation_bits=bits[shape.name],
                                                     lanes=lanes[shape.name], time_steps=T,
                                                     input_rate=warm_rates[shape.name])["area"]
    else:
        layer_cost = lambda shape, c: layer_energy_pj(shape, c, T, None if search_activity is None
                                                      else search_activity[shape.name])
    ref_energy = sum(layer_cost(s, "uni4") for s in shapes)

    def attach_costs(m):
        for layer in m.quant_layers():
            layer.cost.copy_(torch.tensor([layer_cost(layer.shape, c) / ref_energy for c in CANDIDATES]))

    bc = base_costs[args.cost]
    log(f"seed {seed} fp32 baseline: accuracy {base_acc:.2f}% ({budget} epochs), storage {bc['storage_mb']:.4f} MB, "
        f"energy ({args.cost}) {bc['energy_mj'] * 1e3:.3f} µJ")
    result = {"seed": seed, "baseline": {"accuracy": base_acc, "epochs": budget, "losses": base_losses,
                                         "cost": bc, "costs": base_costs, "input_rates": base_rates},
              "search_rates": None if args.cost == "dense" else {s.name: float(warm_rates[s.name]) for s in shapes},
              "runs": []}

    # ---- β sweep -------------------------------------------------------------------------
    for beta in args.beta:
        tag = _beta_tag(beta)
        ck_path = ckpt_dir / f"{tag}.pt"
        h_run = _config_hash(args, seed, tag)
        model = new_model()
        attach_costs(model)
        if args.resume and ck_path.is_file() and torch.load(ck_path, weights_only=False)["hash"] == h_run:
            ck = torch.load(ck_path, weights_only=False)
            model.set_choices(ck["choices"])
            model.load_state_dict(ck["state"])
            found, integer = ck["search"], ck["integer"]
            model.freeze_bn(integer)
            log(f"seed {seed} β={beta:g}: resumed from checkpoint")
        else:
            model.load_state_dict(warm_state)
            attach_costs(model)
            found = trainer.search(model, beta, seed=seed + 1)
            model.set_choices(found["choices"])
            trainer.train_epochs(model, args.qat_epochs, f"seed {seed} QAT β={beta:g}", seed=seed + 2)
            integer = "fp32" not in found["choices"].values()
            if integer and args.int_epochs:
                model.freeze_bn(True)
                trainer.train_epochs(model, args.int_epochs, f"seed {seed} integer QAT β={beta:g}", integer=True,
                                     seed=seed + 3)
            if dist.main:
                save_checkpoint({"hash": h_run, "state": model.state_dict(), "choices": found["choices"],
                                 "search": found, "integer": integer}, ck_path)
        if integer:
            model.freeze_bn(True)
        acc, preds = evaluate(model, test, integer=integer)
        rates = model.input_rates(test.frames, integer=integer)
        costs = _costs(setup, found["choices"], rates, bits)
        cost = costs[args.cost]
        run_result = {"beta": beta, "seed": seed, "accuracy": acc, "accuracy_drop": base_acc - acc,
                      "choices": found["choices"], "probabilities": found["probabilities"],
                      "history": found["history"], "cost": cost, "costs": costs,
                      "storage_compression": bc["storage_mb"] / cost["storage_mb"],
                      "energy_reduction": bc["energy_mj"] / cost["energy_mj"], "integer_mode": integer,
                      "layers": {l.name: {"candidate": l.candidate, "nonzero": _nonzero_share(l)}
                                 for l in model.quant_layers()}}
        if dist.main:
            _export_and_check(setup, model, run_result, out / tag, preds)
        log(f"seed {seed} β={beta:g}: accuracy {acc:.2f}% (Δ {acc - base_acc:+.2f}), avg bits {cost['avg_bits']:.2f}, "
            f"storage ×{run_result['storage_compression']:.1f}, energy ×{run_result['energy_reduction']:.1f}, "
            f"golden agreement {run_result.get('agreement')}, dead engines {run_result.get('dead_engines')}")
        result["runs"].append(run_result)
    result["seconds"] = time.time() - t_start
    return result


def _nonzero_share(layer) -> float:
    cand = layer.candidate
    if cand == "fp32":
        return float((layer.weight.detach() != 0).float().mean())
    scheme, bits = candidate_scheme(cand)
    return float((quantize.to_int(layer.weight, scheme, bits, layer.scale(cand)) != 0).float().mean())


def _export_and_check(setup: _Setup, model, run_result: dict, exp_dir: Path, preds) -> None:
    """Export one run, run the golden integer network on the test set: agreement with the QAT
    model's predictions, every engine's spike and input rates, the engines that never spike."""
    args, train, test = setup.args, setup.train, setup.test
    beta, tag = run_result["beta"], _beta_tag(run_result["beta"])
    if exp_dir.exists():
        shutil.rmtree(exp_dir)
    try:
        path = export_network(model, exp_dir, name=f"spikehq_{args.dataset}_{tag}",
                              description=f"SpikeHQ search, {args.dataset}, preset {args.preset}, β={beta:g}",
                              metadata={"search": {"beta": beta, "accuracy": run_result["accuracy"],
                                                   "seed": run_result["seed"], "dataset": args.dataset,
                                                   "preset": args.preset, "cost": args.cost,
                                                   "command": "spikehq-search " + " ".join(args.argv)}},
                              activity_frames=train.frames[:ACTIVITY_SAMPLES],
                              activity_source=f"{args.dataset} training set, first {ACTIVITY_SAMPLES} samples")
        run_result["export"] = str(path)
    except ValueError as e:
        run_result["export"] = None
        run_result["export_error"] = str(e)
    if run_result.get("export") and run_result["integer_mode"]:
        t0 = time.time()
        net = load_network(run_result["export"])
        golden = net.predict(test.frames)
        run_result["golden_accuracy"] = float((golden == test.labels).float().mean() * 100)
        run_result["agreement"] = float((golden == preds).float().mean() * 100)
        engines = net.engine_activity(test.frames)
        run_result["engines"] = engines
        run_result["dead_engines"] = [n for n, e in engines.items() if n != "head" and e["spikes"] == 0]
        run_result["golden_seconds"] = time.time() - t0
    else:
        run_result["agreement"] = None
        run_result["dead_engines"] = None
        run_result["agreement_note"] = ("fp32 layers have no integer datapath" if not run_result["integer_mode"]
                                        else run_result.get("export_error", "not exported"))


def _make_setup(args, dist: Distributed) -> _Setup:
    log = (lambda *a: print(*a, flush=True)) if dist.main else (lambda *a: None)
    base_cfg = preset_config(args.preset)
    T = args.time_steps or base_cfg.time_steps
    img = (args.image_size, args.image_size) if args.image_size else None
    if args.dataset != "digits" and img is None:
        img = base_cfg.image_size
    train, test = load_dataset(args.dataset, time_steps=T, root=args.data_root, image_size=img)
    if args.limit_train:
        train = train.subset(args.limit_train)
    if args.limit_test:
        test = test.subset(args.limit_test)
    H, W = train.frames.shape[-2:]
    cfg = preset_config(args.preset, time_steps=T, image_size=(H, W), classes=len(train.classes),
                        depth=args.depth, heads=args.heads, attention=args.attention, neuron=args.neuron,
                        membrane=args.membrane, threshold_learning=args.threshold_learning,
                        spatial_sparsity=args.spatial_sparsity, channel_threshold=args.channel_threshold,
                        key_bits=args.key_bits, key_step=args.key_step)
    return _Setup(args, dist, train, test, cfg, SpikingTransformer.layer_shapes_for(cfg), T,
                  Trainer(args, dist, train, test), log)


def _seed_worker(args, seed: int, out: str) -> dict:
    """One seed in a worker process (``--jobs``): its own data, model and one torch thread."""
    torch.set_num_threads(args.threads)
    return _run_seed(_make_setup(args, Distributed()), seed, Path(out))


def run(args) -> dict:
    dist = Distributed()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t_start = time.time()
    setup = _make_setup(args, dist)
    H, W = setup.train.frames.shape[-2:]
    jobs = min(args.jobs, len(args.seeds)) if dist.world == 1 else 1
    setup.log(f"spikehq-search: {args.dataset} ({len(setup.train)} train / {len(setup.test)} test, T={setup.T}, "
              f"{H}×{W}), preset {args.preset}, β {args.beta}, seeds {args.seeds}, cost {args.cost}, "
              f"{dist.world} process(es), {jobs} seed job(s)")
    if jobs > 1:     # independent seeds in parallel processes; each is deterministic on its own
        worker_args = argparse.Namespace(**{**vars(args), "no_progress": True})
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            seeds = pool.starmap(_seed_worker, [(worker_args, s, str(out / f"seed_{s}")) for s in args.seeds])
    else:
        seeds = [_run_seed(setup, seed, out / f"seed_{seed}") for seed in args.seeds]
    results = {"seeds": seeds, "seconds": time.time() - t_start,
               "config": {k: v for k, v in vars(args).items()}, "model": setup.cfg.to_dict(), "world_size": dist.world,
               "quantizer_check": quantize.synthetic_error_table()}
    results["paper_preset"] = paper_preset_energy(seeds)
    if dist.main:
        results["summary"] = report_mod.summarize(results)
        selected = report_mod.select_run(results, args.max_drop)
        results["selected"] = None if selected is None else {"beta": selected["beta"], "seed": selected["seed"]}
        if selected:
            src = Path(selected["export"]).parent
            write_atomic(out / "searched.json", (src / "searched.json").read_bytes())
            if (out / "weights").exists():
                shutil.rmtree(out / "weights")
            shutil.copytree(src / "weights", out / "weights")
        report_mod.write_report(results, out, plots=not args.no_plots)
        setup.log(f"done in {results['seconds']:.0f} s: {out / 'report.md'}")
    dist.barrier()
    dist.close()
    return results


PAPER_FP32_MJ = {11: 14.99, 101: 17.49}     # the paper's fp32 energies: DVS128 Gesture, N-Caltech101


def paper_preset_energy(seeds: list[dict]) -> dict:
    """The ``paper`` preset (Spikformer-2-256, T=16) in fp32 under both conventions, with the
    input spike rates of this run's fp32 baselines (mean over seeds) transferred by layer role:
    storage, energy, group shares, the all-rates-1 bound of the ``paper`` convention and the
    uniform spike rate each of the paper's totals would need (module ``cost`` docstring)."""
    rates_src = {}
    for name in seeds[0]["baseline"]["input_rates"]:
        rates_src[name] = sum(s["baseline"]["input_rates"][name] for s in seeds) / len(seeds)
    out = {"rates_source": "input spike rates of this run's fp32 baselines on the test set, mean over seeds, "
                           "transferred by layer role", "classes": {}}
    for classes, target in PAPER_FP32_MJ.items():
        shapes = paper_layers(classes)
        bits = SpikingTransformer(preset_config("paper", classes=classes)).activation_bits()
        rates = rates_by_role(rates_src, shapes)
        dense = network_cost(shapes, "fp32", 16)
        paper = network_cost(shapes, "fp32", 16, layer_activity(shapes, rates, bits))
        ones = network_cost(shapes, "fp32", 16, layer_activity(shapes, {n: 1.0 for n in rates}, bits))
        zeros = network_cost(shapes, "fp32", 16, layer_activity(shapes, {n: 0.0 for n in rates}, bits))
        # a uniform rate r on the SOP layers: E(r) = E(0) + r·(E(1) − E(0)); with SOPs at the MAC energy instead
        slope_add = ones["energy_mj"] - zeros["energy_mj"]
        slope_mac = ones["sops"] * op_energy_pj("fp32") * 1e-9
        share = lambda c: {g: c["groups"][g]["energy_mj"] / c["energy_mj"] for g in c["groups"]}
        # the convention the paper's own figures fit (docs/search.md): every layer dense FP32 MACs,
        # except the tokenizer convs after the first, one MAC per input spike
        sparse = {l.name: 16 * layer_ops(l) * op_energy_pj("fp32") * 1e-9 for l in shapes
                  if l.group == "tokenizer" and l.name != "tok0"}
        fit = dense["energy_mj"] - sum(e * (1 - rates[n]) for n, e in sparse.items())
        out["classes"][classes] = {
            "paper_mj": target, "storage_mb": dense["storage_mb"], "dense_mj": dense["energy_mj"],
            "paper_convention_mj": paper["energy_mj"], "paper_convention_rate1_mj": ones["energy_mj"],
            "paper_convention_rate0_mj": zeros["energy_mj"],
            "rate_needed_sop_add": (target - zeros["energy_mj"]) / slope_add,
            "rate_needed_sop_mac": (target - zeros["energy_mj"]) / slope_mac,
            "tokenizer_spike_mac_mj": fit,
            "rate_needed_tokenizer_spike_mac": (target - dense["energy_mj"] + sum(sparse.values())) / sum(sparse.values()),
            "dense_shares": share(dense), "paper_shares": share(paper), "rates": rates}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError) as e:  # DataError, ConfigError, SearchError
        print(f"spikehq-search: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
