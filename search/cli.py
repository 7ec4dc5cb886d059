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
import shutil
import sys
import time
from pathlib import Path

import torch

from ..atomic import write_atomic
from ..golden.network import load_network
from . import report as report_mod
from .cost import CANDIDATES, layer_energy_pj, network_cost
from .data import load_dataset
from .export import export_network
from .model import SpikingTransformer, paper_layers, preset_config
from .trainer import Distributed, Trainer, evaluate, save_checkpoint

__all__ = ["main", "parse_args", "build_parser", "run", "SearchError"]

DEFAULT_BETAS = (0.1, 0.5, 2.0)
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
        if v < 0 or (v == 0 and name not in ("--int-epochs", "--qat-epochs", "--warmup-epochs", "--limit-train", "--limit-test")):
            raise argparse.ArgumentTypeError(f"{name}: expected an integer >= {0 if v == 0 else 1}, got {v}")
        return v
    return parse


def _positive_float(name, allow_zero=False):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected a number, got {text!r}") from None
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
        epilog="Outputs in OUT: report.md, report.json, plots/*.png, beta_<β>/searched.json (+ weights/), "
               "searched.json + weights/ of the selected β, checkpoints/*.pt. Multi-process: "
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
                   help="SSA (binary Q,K,V, scale) or A2OS2A (binary Q, ReLU K, ternary V; not exportable)")
    g.add_argument("--neuron", choices=("lif", "ternary"), default="lif", help="layer neurons")
    g.add_argument("--membrane", choices=("float", "ternary"), default="float",
                   help="full-precision membrane or the SpQuant ternary membrane")
    g.add_argument("--limit-train", type=_positive_int("--limit-train"), default=0,
                   help="use only the first N training samples (0 = all; for smoke tests)")
    g.add_argument("--limit-test", type=_positive_int("--limit-test"), default=0,
                   help="use only the first N test samples (0 = all)")
    s = p.add_argument_group("search")
    s.add_argument("--beta", type=_positive_float("--beta", allow_zero=True), nargs="+", default=list(DEFAULT_BETAS),
                   help=f"hardware-loss weight(s); several values make a β sweep (default {' '.join(map(str, DEFAULT_BETAS))})")
    s.add_argument("--warmup-epochs", type=_positive_int("--warmup-epochs"), default=12,
                   help="fp32 epochs before the search starts (default 12)")
    s.add_argument("--search-epochs", type=_positive_int("--search-epochs"), default=8, help="search epochs (default 8)")
    s.add_argument("--qat-epochs", type=_positive_int("--qat-epochs"), default=6,
                   help="float QAT epochs of the chosen configuration (default 6)")
    s.add_argument("--int-epochs", type=_positive_int("--int-epochs"), default=4,
                   help="integer-mode QAT epochs (frozen folded BatchNorm; default 4)")
    s.add_argument("--batch-size", type=_positive_int("--batch-size"), default=64, help="per process (default 64)")
    s.add_argument("--lr", type=_positive_float("--lr"), default=2e-3, help="AdamW learning rate (default 2e-3)")
    s.add_argument("--alpha-lr", type=_positive_float("--alpha-lr"), default=0.05,
                   help="Adam learning rate of the selection logits (default 0.05)")
    s.add_argument("--alpha-fraction", type=_positive_float("--alpha-fraction"), default=0.2,
                   help="share of the training set held out for Step 1 (default 0.2)")
    s.add_argument("--tau-start", type=_positive_float("--tau-start"), default=5.0, help="initial Gumbel temperature")
    s.add_argument("--tau-end", type=_positive_float("--tau-end"), default=0.2, help="final Gumbel temperature")
    s.add_argument("--max-drop", type=_positive_float("--max-drop", allow_zero=True), default=1.0,
                   help="accuracy points a β may lose to be selected as the exported result (default 1.0, the paper's <1 %%)")
    o = p.add_argument_group("run")
    o.add_argument("--seed", type=_positive_int("--seed"), default=0, help="random seed (default 0)")
    o.add_argument("--out", default="build/search", help="output folder (default build/search)")
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
    if args.tau_end > args.tau_start:
        p.error(f"--tau-end: expected at most --tau-start ({args.tau_start}), got {args.tau_end}")
    if args.dataset != "digits" and args.data_root is None:
        p.error(f"--data-root: required for --dataset {args.dataset} (local files; nothing is downloaded)")
    if args.dataset == "digits" and args.image_size not in (None, 8):
        p.error(f"--image-size: the digits are 8x8, got {args.image_size}")
    if len(set(args.beta)) != len(args.beta):
        p.error("--beta: values must be distinct")
    return args



# ---- the whole run -----------------------------------------------------------------------------

def _config_hash(args, phase: str, extra: str = "") -> str:
    keys = ("preset", "dataset", "data_root", "image_size", "time_steps", "depth", "heads", "attention", "neuron",
            "membrane", "limit_train", "limit_test", "warmup_epochs", "search_epochs", "qat_epochs", "int_epochs",
            "batch_size", "lr", "alpha_lr", "alpha_fraction", "tau_start", "tau_end", "seed")
    text = json.dumps({k: getattr(args, k) for k in keys}, sort_keys=True) + phase + extra
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _beta_tag(beta: float) -> str:
    return f"beta_{beta:g}".replace(".", "p")


def run(args) -> dict:

    dist = Distributed()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    ckpt_dir = out / "checkpoints"
    t_start = time.time()
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
                        membrane=args.membrane)
    log(f"spikehq-search: {args.dataset} ({len(train)} train / {len(test)} test, T={T}, {H}×{W}), "
        f"preset {args.preset}, β {args.beta}, {dist.world} process(es)")
    trainer = Trainer(args, dist, train, test)

    def new_model():
        torch.manual_seed(args.seed)
        return SpikingTransformer(cfg)

    shapes = SpikingTransformer.layer_shapes_for(cfg)
    ref_energy = sum(layer_energy_pj(s, "uni4", T) for s in shapes)

    def attach_costs(model):
        for layer in model.quant_layers():
            layer.cost.copy_(torch.tensor([layer_energy_pj(layer.shape, c, T) / ref_energy for c in CANDIDATES]))

    # ---- fp32 baseline (full budget) and warm start --------------------------------------
    budget = args.warmup_epochs + args.search_epochs + args.qat_epochs + args.int_epochs
    base_ckpt = ckpt_dir / "baseline.pt"
    h_base = _config_hash(args, "baseline")
    model = new_model()
    warm_state = None
    if args.resume and base_ckpt.is_file() and torch.load(base_ckpt, weights_only=False)["hash"] == h_base:
        ck = torch.load(base_ckpt, weights_only=False)
        model.load_state_dict(ck["state"])
        warm_state, base_losses = ck["warm"], ck["losses"]
        log("baseline: resumed from checkpoint")
    else:
        model.set_choices("fp32")
        snapshot = {}

        def keep_warm(epoch):
            if epoch == args.warmup_epochs - 1:
                snapshot["warm"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        base_losses = trainer.train_epochs(model, budget, "fp32 baseline", seed=args.seed, on_epoch=keep_warm)
        warm_state = snapshot.get("warm") or {k: v.detach().clone() for k, v in new_model().state_dict().items()}
        if dist.main:
            save_checkpoint({"hash": h_base, "state": model.state_dict(), "warm": warm_state, "losses": base_losses},
                         base_ckpt)
    model.set_choices("fp32")
    base_acc, _ = evaluate(model, test)
    base_cost = network_cost(shapes, "fp32", T)
    log(f"fp32 baseline: accuracy {base_acc:.2f}% ({budget} epochs), storage {base_cost['storage_mb']:.4f} MB, "
        f"energy {base_cost['energy_mj'] * 1e3:.3f} µJ")
    results = {"baseline": {"accuracy": base_acc, "epochs": budget, "losses": base_losses, "cost": base_cost},
               "runs": []}

    # ---- β sweep -------------------------------------------------------------------------
    for beta in args.beta:
        tag = _beta_tag(beta)
        ck_path = ckpt_dir / f"{tag}.pt"
        h_run = _config_hash(args, tag)
        model = new_model()
        attach_costs(model)
        resumed = args.resume and ck_path.is_file() and torch.load(ck_path, weights_only=False)["hash"] == h_run
        if resumed:
            ck = torch.load(ck_path, weights_only=False)
            model.set_choices(ck["choices"])
            model.load_state_dict(ck["state"])
            found, integer = ck["search"], ck["integer"]
            model.freeze_bn(integer)
            log(f"β={beta:g}: resumed from checkpoint")
        else:
            model.load_state_dict(warm_state)
            attach_costs(model)
            found = trainer.search(model, beta, seed=args.seed + 1)
            model.set_choices(found["choices"])
            trainer.train_epochs(model, args.qat_epochs, f"QAT β={beta:g}", seed=args.seed + 2)
            integer = "fp32" not in found["choices"].values() and args.attention == "ssa"
            if integer and args.int_epochs:
                model.freeze_bn(True)
                trainer.train_epochs(model, args.int_epochs, f"integer QAT β={beta:g}", integer=True,
                                     seed=args.seed + 3)
            if dist.main:
                save_checkpoint({"hash": h_run, "state": model.state_dict(), "choices": found["choices"],
                              "search": found, "integer": integer}, ck_path)
        if integer:
            model.freeze_bn(True)
        acc, preds = evaluate(model, test, integer=integer)
        cost = network_cost(shapes, found["choices"], T)
        run_result = {"beta": beta, "accuracy": acc, "accuracy_drop": base_acc - acc, "choices": found["choices"],
                      "probabilities": found["probabilities"], "history": found["history"], "cost": cost,
                      "storage_compression": base_cost["storage_mb"] / cost["storage_mb"],
                      "energy_reduction": base_cost["energy_mj"] / cost["energy_mj"], "integer_mode": integer}
        if dist.main:
            exp_dir = out / tag
            if exp_dir.exists():
                shutil.rmtree(exp_dir)
            try:
                path = export_network(model, exp_dir, name=f"spikehq_{args.dataset}_{tag}",
                                      description=f"SpikeHQ search, {args.dataset}, preset {args.preset}, β={beta:g}",
                                      metadata={"search": {"beta": beta, "accuracy": acc, "seed": args.seed,
                                                           "dataset": args.dataset, "preset": args.preset,
                                                           "command": "spikehq-search " + " ".join(args.argv)}},
                                      activity_frames=train.frames[:ACTIVITY_SAMPLES],
                                      activity_source=f"{args.dataset} training set, first {ACTIVITY_SAMPLES} samples")
                run_result["export"] = str(path)
            except ValueError as e:
                run_result["export"] = None
                run_result["export_error"] = str(e)
            if run_result.get("export") and integer:
                t0 = time.time()
                net = load_network(run_result["export"])
                golden = net.predict(test.frames)
                run_result["golden_accuracy"] = float((golden == test.labels).float().mean() * 100)
                run_result["agreement"] = float((golden == preds).float().mean() * 100)
                run_result["golden_seconds"] = time.time() - t0
            else:
                run_result["agreement"] = None
                run_result["agreement_note"] = ("fp32 layers have no integer datapath" if not integer
                                                else run_result.get("export_error", "not exported"))
        log(f"β={beta:g}: accuracy {acc:.2f}% (Δ {acc - base_acc:+.2f}), avg bits {cost['avg_bits']:.2f}, "
            f"storage ×{run_result['storage_compression']:.1f}, energy ×{run_result['energy_reduction']:.1f}, "
            f"golden agreement {run_result.get('agreement')}")
        results["runs"].append(run_result)

    results["seconds"] = time.time() - t_start
    results["config"] = {k: v for k, v in vars(args).items()}
    results["model"] = cfg.to_dict()
    results["world_size"] = dist.world
    results["paper_preset"] = {
        "storage_mb_11": network_cost(paper_layers(11), "fp32", 16)["storage_mb"],
        "storage_mb_101": network_cost(paper_layers(101), "fp32", 16)["storage_mb"],
        "energy_mj_11": network_cost(paper_layers(11), "fp32", 16)["energy_mj"]}
    if dist.main:
        selected = report_mod.select_run(results, args.max_drop)
        results["selected_beta"] = selected["beta"] if selected else None
        if selected and selected.get("export"):
            src = Path(selected["export"]).parent
            write_atomic(out / "searched.json", (src / "searched.json").read_bytes())
            if (out / "weights").exists():
                shutil.rmtree(out / "weights")
            shutil.copytree(src / "weights", out / "weights")
        report_mod.write_report(results, out, plots=not args.no_plots)
        log(f"done in {results['seconds']:.0f} s: {out / 'report.md'}")
    dist.barrier()
    dist.close()
    return results


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
