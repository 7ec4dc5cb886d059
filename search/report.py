"""Search report: report.json, report.md and plots (matplotlib, Agg backend).

Several seeds run the same β sweep; the report gives mean ± standard deviation over seeds,
selects β on the means and ships one seed's export of it (the most accurate seed whose
integer network has no engine that never spikes).

Plots (``plots/``):

* ``pareto.png`` — the β Pareto front: mean accuracy vs mean energy and vs storage, error bars
  ± one standard deviation over seeds, fp32 baseline included;
* ``probs_<β>.png`` — selection probabilities of one layer during the search (paper Fig. 3; the
  query layer of the last block) with the Step-1 loss, shipped seed;
* ``choices.png`` — per-layer choices over the network for every β (paper Fig. 5), shipped seed;
* ``breakdown.png`` — mean energy and storage per group (tokenizer / attention / MLP / head,
  paper Fig. 4).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..atomic import atomic_path, write_atomic, write_json_atomic
from .cost import CANDIDATES, GROUPS, candidate_scheme

__all__ = ["summarize", "select_run", "write_report", "markdown", "findings"]


# (β, accuracy %, storage MB, avg bits, energy % of fp32): the paper's Table 2, DVS128 rows
PAPER_DVS128 = ((0, 98.26, 10.21, 32, 100), (0.5, 97.90, 0.982, 3.07, 16.73), (1.0, 97.57, 0.744, 2.33, 11.61),
                (1.5, 97.22, 0.688, 2.16, 9.81), (2.0, 96.87, 0.695, 2.18, 9.80))


def _ms(values) -> tuple[float, float]:
    """(mean, sample standard deviation; 0 for one value)."""
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _runs(results: dict, beta: float) -> list[dict]:
    return [r for s in results["seeds"] for r in s["runs"] if r["beta"] == beta]


def summarize(results: dict) -> dict:
    """Mean ± std over seeds of the baseline and of every β: accuracy, drop, bits, storage,
    energy under the search's convention and under both conventions."""
    seeds = results["seeds"]
    base = [s["baseline"] for s in seeds]
    out = {"baseline": {"accuracy": _ms(b["accuracy"] for b in base),
                        "energy_mj": _ms(b["cost"]["energy_mj"] for b in base),
                        "energy_dense_mj": _ms(b["costs"]["dense"]["energy_mj"] for b in base),
                        "energy_paper_mj": _ms(b["costs"]["paper"]["energy_mj"] for b in base),
                        "storage_mb": _ms(b["cost"]["storage_mb"] for b in base)}, "betas": []}
    for beta in [r["beta"] for r in seeds[0]["runs"]]:
        runs = _runs(results, beta)
        out["betas"].append({
            "beta": beta, "seeds": [r["seed"] for r in runs],
            "accuracy": _ms(r["accuracy"] for r in runs), "accuracy_drop": _ms(r["accuracy_drop"] for r in runs),
            "avg_bits": _ms(r["cost"]["avg_bits"] for r in runs), "storage_mb": _ms(r["cost"]["storage_mb"] for r in runs),
            "energy_mj": _ms(r["cost"]["energy_mj"] for r in runs),
            "energy_dense_mj": _ms(r["costs"]["dense"]["energy_mj"] for r in runs),
            "energy_paper_mj": _ms(r["costs"]["paper"]["energy_mj"] for r in runs),
            "exported": all(r.get("export") and r["integer_mode"] for r in runs),
            "dead_runs": sum(1 for r in runs if r.get("dead_engines"))})
    return out


def select_run(results: dict, max_drop: float) -> dict | None:
    """β on the means: the lowest mean energy among the β whose mean drop is within ``max_drop``
    points (else the highest mean accuracy), among the β every seed exported as an integer
    network (no fp32 layer). Then the seed: the
    most accurate exported run of that β without dead engines (else the most accurate), lowest
    seed on ties."""
    betas = [b for b in results["summary"]["betas"] if b["exported"]]
    if not betas:
        return None
    ok = [b for b in betas if b["accuracy_drop"][0] <= max_drop]
    best = (min(ok, key=lambda b: (b["energy_mj"][0], -b["accuracy"][0])) if ok
            else max(betas, key=lambda b: b["accuracy"][0]))
    runs = _runs(results, best["beta"])
    alive = [r for r in runs if r.get("dead_engines") == []] or runs
    return max(alive, key=lambda r: (r["accuracy"], -r["seed"]))


def _fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pm(ms, digits=2):
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def _shipped(results: dict) -> dict | None:
    sel = results.get("selected")
    if not sel:
        return None
    return next(r for r in _runs(results, sel["beta"]) if r["seed"] == sel["seed"])


def _bits(candidate: str) -> int:
    return candidate_scheme(candidate)[1]


def findings(results: dict) -> list[dict]:
    """The paper's findings against this run: per-layer choices over every seed and β (they
    come from the search's cost convention), energy shares under both conventions."""
    runs = [r for s in results["seeds"] for r in s["runs"]]
    n = len(runs)
    cost = results["config"].get("cost", "paper")
    rows = []
    for layer in ("tok0", "head"):
        k = sum(1 for r in runs if r["choices"][layer] == "uni4")
        counts = {c: sum(1 for r in runs if r["choices"][layer] == c) for c in CANDIDATES}
        rows.append({"finding": f"{'first layer' if layer == 'tok0' else 'head'} wants uniform-4",
                     "paper": "uni4 (Fig. 5)", "cost": cost,
                     "observed": f"{layer} uni4 in {k}/{n} runs ("
                                 + ", ".join(f"{c} {v}" for c, v in counts.items() if v) + ")",
                     "agrees": k * 2 > n})
    base = [s["baseline"] for s in results["seeds"]]
    sel = results.get("selected")
    sel_runs = _runs(results, sel["beta"]) if sel else []
    for conv in ("dense", "paper", "fpga"):
        if conv not in base[0]["costs"]:
            continue

        def share(cs):
            return statistics.fmean(c["groups"]["tokenizer"]["energy_mj"] / c["energy_mj"] for c in cs)

        def top(cs):
            return max(GROUPS, key=lambda g: statistics.fmean(c["groups"][g]["energy_mj"] for c in cs))
        fp = [b["costs"][conv] for b in base]
        text = f"tokenizer {100 * share(fp):.1f} % of fp32 energy (largest: {top(fp)})"
        agrees = top(fp) == "tokenizer"
        if sel_runs:
            q = [r["costs"][conv] for r in sel_runs]
            text += f"; {100 * share(q):.1f} % at β={sel['beta']:g} (largest: {top(q)})"
            agrees = agrees and top(q) == "tokenizer"
        rows.append({"finding": "the tokenizer dominates energy", "paper": "41.4 % fp32, 48 % at β=0.5 (CIFAR10-DVS)",
                     "cost": f"{conv} (energy accounting)", "observed": text, "agrees": agrees})
    blocks = sorted({name.split("_")[0] for name in runs[0]["choices"] if name.startswith("b") and "_" in name})
    mean_bits = {role: statistics.fmean(_bits(r["choices"][f"{b}_{role}"]) for r in runs for b in blocks)
                 for role in ("q", "k", "v", "proj")}
    rows.append({"finding": "Q and K tolerate lower precision than V (and proj)", "paper": "Fig. 4 pies", "cost": cost,
                 "observed": "mean weight bits " + ", ".join(f"{k} {v:.2f}" for k, v in mean_bits.items())
                             + f" over {n} runs × {len(blocks)} blocks",
                 "agrees": max(mean_bits["q"], mean_bits["k"]) < mean_bits["v"]})
    return rows


def markdown(results: dict) -> str:
    cfg = results.get("config", {})
    summ = results["summary"]
    sb = summ["baseline"]
    seeds = results["seeds"]
    conv = cfg.get("cost", "paper")
    sel = results.get("selected")
    lines = [
        "# SpikeHQ search report", "",
        f"Data set `{cfg.get('dataset')}`, preset `{cfg.get('preset')}`, seeds {[s['seed'] for s in seeds]}, "
        f"search cost `{conv}`, {results.get('world_size', 1)} process(es), {results.get('seconds', 0):.0f} s. "
        f"Baseline: fp32 trained for {seeds[0]['baseline']['epochs']} epochs, the same budget as warm-up + search + QAT. "
        f"Figures are mean ± standard deviation over the {len(seeds)} seeds; energy in the `{conv}` convention "
        "(the other convention in its own column).", "",
        "| model | β | accuracy % | Δ points | avg weight bits | storage MB | energy mJ "
        f"| {'dense' if conv == 'paper' else 'paper'} energy mJ | runs with dead engines |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| fp32 baseline | 0 | {_pm(sb['accuracy'])} | 0.00 | 32.00 | {_pm(sb['storage_mb'], 4)} | "
        f"{_pm(sb['energy_mj'], 5)} | {_pm(sb['energy_dense_mj' if conv == 'paper' else 'energy_paper_mj'], 5)} | n/a |"]
    for b in summ["betas"]:
        mark = " (selected)" if sel and sel["beta"] == b["beta"] else ""
        other = b["energy_dense_mj" if conv == "paper" else "energy_paper_mj"]
        dead = f"{b['dead_runs']}/{len(b['seeds'])}" if b["exported"] else "n/a: fp32 layers, not exported"
        lines.append(f"| searched{mark} | {b['beta']:g} | {_pm(b['accuracy'])} | {-b['accuracy_drop'][0]:+.2f} ± "
                     f"{b['accuracy_drop'][1]:.2f} | {_pm(b['avg_bits'])} | {_pm(b['storage_mb'], 4)} | "
                     f"{_pm(b['energy_mj'], 5)} | {_pm(other, 5)} | {dead} |")
    within = [b["beta"] for b in summ["betas"] if b["exported"] and b["accuracy_drop"][0] <= cfg.get("max_drop", 1.0)]
    lines += ["", f"β is selected on the means: the lowest mean energy among the integer-exported β within "
              f"{cfg.get('max_drop', 1.0):g} points of the baseline's mean "
              + (f"({', '.join(f'{x:g}' for x in within)})" if within else
                 "— none is, so the most accurate mean") + "; the shipped `searched.json` is that β's most "
              "accurate seed whose integer network has no dead engine.", "",
              "## Per seed", "",
              "| seed | fp32 % | " + " | ".join(f"β={b['beta']:g} % (bits, golden agreement %)" for b in summ["betas"]) + " |",
              "|---|---|" + "---|" * len(summ["betas"])]
    for s in seeds:
        cells = [f"{r['accuracy']:.2f} ({r['cost']['avg_bits']:.2f}, {_fmt(r.get('agreement'))})" for r in s["runs"]]
        lines.append(f"| {s['seed']} | {s['baseline']['accuracy']:.2f} | " + " | ".join(cells) + " |")
    dead = [(r["seed"], r["beta"], r["dead_engines"]) for s in seeds for r in s["runs"] if r.get("dead_engines")]
    lines += ["", "Engines that never spike on the test set (golden integer network): "
              + ("; ".join(f"seed {sd} β={b:g}: {', '.join(d)}" for sd, b, d in dead) if dead else "none") + ".", ""]
    shipped = _shipped(results)
    if shipped:
        lines += [f"## Shipped network: β={shipped['beta']:g}, seed {shipped['seed']}", "",
                  f"Test accuracy {shipped['accuracy']:.2f} % (golden {_fmt(shipped.get('golden_accuracy'))} %, "
                  f"agreement {_fmt(shipped.get('agreement'))} %). Per engine on the {cfg.get('dataset')} test set: "
                  "share of non-zero integer weights, input spike rate and output spike rate (per neuron and step).", "",
                  "| engine | choice | non-zero weights % | input rate | spike rate | spikes | dead |",
                  "|---|---|---|---|---|---|---|"]
        engines = shipped.get("engines") or {}
        for name, e in engines.items():
            layer = shipped["layers"].get(name, {})
            nz = f"{100 * layer['nonzero']:.1f}" if layer else "n/a"
            is_dead = name != "head" and e["spikes"] == 0
            rate = "readout" if name == "head" else f"{e['spike_rate']:.3f}"
            lines.append(f"| {name} | {layer.get('candidate', 'attention neuron')} | {nz} | {e['input_rate']:.3f} | "
                         f"{rate} | {e['spikes']} | {'**DEAD**' if is_dead else ''} |")
        lines += [""]
    if seeds[0]["runs"]:
        lines += ["## Per-layer choices (every seed)", "",
                  "| layer | group | weights | " + " | ".join(f"s{r['seed']} β={r['beta']:g}" for s in seeds for r in s["runs"]) + " |",
                  "|---|---|---|" + "---|" * sum(len(s["runs"]) for s in seeds)]
        for i, layer in enumerate(seeds[0]["runs"][0]["cost"]["layers"]):
            cells = [r["cost"]["layers"][i]["candidate"] for s in seeds for r in s["runs"]]
            lines.append(f"| {layer['name']} | {layer['group']} | {layer['params']} | " + " | ".join(cells) + " |")
        lines += ["", f"## Energy / storage by group (mean over seeds, `{conv}` convention)", "", "| model | " +
                  " | ".join(f"{g} mJ" for g in GROUPS) + " | " + " | ".join(f"{g} MB" for g in GROUPS) + " |",
                  "|---|" + "---|" * (2 * len(GROUPS))]
        rows = [("fp32", [s["baseline"]["cost"] for s in seeds])] + [
            (f"β={b['beta']:g}", [r["cost"] for r in _runs(results, b["beta"])]) for b in summ["betas"]]
        for name, cs in rows:
            lines.append(f"| {name} | " + " | ".join(f"{statistics.fmean(c['groups'][g]['energy_mj'] for c in cs):.5f}" for g in GROUPS)
                         + " | " + " | ".join(f"{statistics.fmean(c['groups'][g]['storage_mb'] for c in cs):.4f}" for g in GROUPS) + " |")
    lines += ["", "## The paper's findings against this search", "",
              "| finding | paper | cost convention | this search | agrees |", "|---|---|---|---|---|"]
    for f in findings(results):
        lines.append(f"| {f['finding']} | {f['paper']} | {f['cost']} | {f['observed']} | {'yes' if f['agrees'] else 'no'} |")
    lines += ["", "Per-layer choices come from the search's cost convention; the run with the other one is "
              "`--cost dense|paper` (docs/search.md gives both).", ""]
    qc = results.get("quantizer_check")
    if qc:
        lines += ["## Quantizers on synthetic weights", "",
                  "Relative squared error ‖w − ŵ‖²/‖w‖² and non-zero share, 65,536 unit Gaussian / Laplace weights; "
                  "PoT with the least-squared-error power-of-two scale (as in search, QAT and export), uniform with "
                  "the least-squared-error scale.", "",
                  "| weights | " + " | ".join(r["candidate"] for r in qc if r["distribution"] == "gaussian") + " |",
                  "|---|" + "---|" * 4]
        for dist in ("gaussian", "laplace"):
            lines.append(f"| {dist} | " + " | ".join(f"{r['relative_error']:.4f} ({100 * r['nonzero']:.0f} % ≠ 0)"
                                                     for r in qc if r["distribution"] == dist) + " |")
        lines.append("")
    paper = results.get("paper_preset")
    if paper:
        lines += ["## The paper preset's fp32 energy (Spikformer-2-256, T=16)", "",
                  f"Spike rates: {paper['rates_source']}. `paper` convention: accumulates per input spike at the "
                  "FP32 add (1.1 pJ), dense FP32 MACs (4.8 pJ) for multi-bit inputs and the first layer. "
                  "`fit`: dense FP32 MACs everywhere except one MAC per input spike in the tokenizer convs after "
                  "the first (the convention the paper's own figures fit, docs/search.md). Rates needed: the "
                  "uniform spike rate that would give the paper's total.", "",
                  "| classes | paper mJ | storage MB | dense mJ | `paper` mJ | `paper`, rates 1 | rate needed "
                  "| `fit` mJ | rate needed | tokenizer/attention/MLP % (`paper`) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for classes, c in paper["classes"].items():
            sh = c["paper_shares"]
            lines.append(f"| {classes} | {c['paper_mj']} | {c['storage_mb']:.2f} | {c['dense_mj']:.2f} | "
                         f"{c['paper_convention_mj']:.2f} | {c['paper_convention_rate1_mj']:.2f} | "
                         f"{c['rate_needed_sop_add']:.2f} | {c['tokenizer_spike_mac_mj']:.2f} | "
                         f"{c['rate_needed_tokenizer_spike_mac']:.2f} | "
                         f"{100 * sh['tokenizer']:.0f}/{100 * sh['attention']:.0f}/{100 * sh['mlp']:.0f} |")
        lines += ["", "A rate above 1 is unreachable: see docs/search.md, \"The paper's energy\".", "",
                  "SpikeHQ paper, Table 2, DVS128 Gesture, quoted for comparison: "
                  + "; ".join(f"β={b}: {a} %, {mb} MB ({bits} bits), energy {e} % of fp32" for b, a, mb, bits, e in PAPER_DVS128)
                  + ".", ""]
    if sel:
        lines += ["## Outputs", "", f"* selected β={sel['beta']:g}, seed {sel['seed']}: `searched.json` — "
                  "`make gen CONFIG=<out>/searched.json`; every run's export in `seed_<s>/beta_<β>/`."]
    lines += ["", "Plots: `plots/pareto.png`, `plots/choices.png`, `plots/breakdown.png`, `plots/probs_*.png`."
              if results.get("plots", True) else "Plots: skipped (--no-plots).", ""]
    return "\n".join(lines)


def _plots(results: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    pdir = out / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        path = pdir / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        written.append(str(path))

    summ, seeds = results["summary"], results["seeds"]
    sb = summ["baseline"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "energy_mj", f"energy per inference, {results['config'].get('cost', 'paper')} (mJ)"),
                           (axes[1], "storage_mb", "weight storage (MB)")):
        ax.errorbar([sb[key][0]], [sb["accuracy"][0]], xerr=[sb[key][1]], yerr=[sb["accuracy"][1]], fmt="*",
                    markersize=12, color="black", capsize=3, label="fp32 baseline")
        pts = sorted(((b[key], b["accuracy"], b["beta"]) for b in summ["betas"]), key=lambda p: p[0][0])
        if pts:
            ax.errorbar([p[0][0] for p in pts], [p[1][0] for p in pts], xerr=[p[0][1] for p in pts],
                        yerr=[p[1][1] for p in pts], fmt="o-", color="tab:red", capsize=3,
                        label=f"SpikeHQ (β sweep, mean ± std, {len(seeds)} seeds)")
            for (x, _), (y, _), b in pts:
                ax.annotate(f"β={b:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Accuracy vs hardware cost")
    save(fig, "pareto.png")

    shipped = _shipped(results)
    runs = next((s["runs"] for s in seeds if shipped and s["seed"] == shipped["seed"]), seeds[0]["runs"])
    for r in runs:
        hist = r["history"]
        names = list(hist["probs"])
        blocks = sorted({n.split("_")[0] for n in names if n.startswith("b")})
        layer = f"{blocks[-1]}_q" if blocks else names[0]
        if not hist["step"]:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for c, series in zip(CANDIDATES, zip(*hist["probs"][layer])):
            ax.plot(hist["step"], series, label=c)
        ax.set_xlabel("search step")
        ax.set_ylabel(f"selection probability ({layer})")
        ax.set_ylim(0, 1)
        ax2 = ax.twinx()
        ax2.plot(hist["step"], hist["loss"], color="gray", alpha=0.4, linewidth=0.8)
        ax2.set_ylabel("Step-1 loss (CE + β·hw)", color="gray")
        ax.legend(fontsize=8, loc="upper left")
        ax.set_title(f"Selection probabilities during the search, β={r['beta']:g}, seed {r['seed']}")
        save(fig, f"probs_beta_{r['beta']:g}".replace(".", "p") + ".png")

    if runs:
        layers = [l["name"] for l in runs[0]["cost"]["layers"]]
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(layers)), 3.6))
        for k, r in enumerate(runs):
            ys = [CANDIDATES.index(l["candidate"]) + (k - (len(runs) - 1) / 2) * 0.12 for l in r["cost"]["layers"]]
            ax.plot(range(len(layers)), ys, "o", label=f"β={r['beta']:g}")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=60, fontsize=8)
        ax.set_yticks(range(len(CANDIDATES)))
        ax.set_yticklabels(CANDIDATES)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"Per-layer quantization choices, seed {runs[0]['seed']}")
        save(fig, "choices.png")

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        rows = [("fp32", [s["baseline"]["cost"] for s in seeds])] + [
            (f"β={b['beta']:g}", [r["cost"] for r in _runs(results, b["beta"])]) for b in summ["betas"]]
        for ax, key, label in ((axes[0], "energy_mj", "energy (mJ)"), (axes[1], "storage_mb", "storage (MB)")):
            bottom = [0.0] * len(rows)
            for g in GROUPS:
                vals = [statistics.fmean(c["groups"][g][key] for c in cs) for _, cs in rows]
                ax.bar([n for n, _ in rows], vals, bottom=bottom, label=g)
                bottom = [b + v for b, v in zip(bottom, vals)]
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.legend(fontsize=8)
        fig.suptitle("Hardware cost by group (mean over seeds)")
        save(fig, "breakdown.png")
    return written


def write_report(results: dict, out: str | Path, plots: bool = True) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results["plots"] = _plots(results, out) if plots else []
    write_json_atomic(out / "report.json", results, indent=1)
    write_atomic(out / "report.md", markdown(results))
    return results
