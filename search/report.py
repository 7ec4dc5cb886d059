"""Search report: report.json, report.md and plots (matplotlib, Agg backend).

Plots (``plots/``):

* ``pareto.png`` — the β Pareto front: accuracy vs energy and vs storage, fp32 baseline included;
* ``probs_<β>.png`` — selection probabilities of one layer during the search (paper Fig. 3; the
  query layer of the last block) with the Step-1 loss;
* ``choices.png`` — per-layer choices over the network for every β (paper Fig. 5);
* ``breakdown.png`` — energy and storage per group (tokenizer / attention / MLP / head, paper Fig. 4).
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path, write_atomic, write_json_atomic
from .cost import CANDIDATES, GROUPS

__all__ = ["select_run", "write_report", "markdown"]


# (β, accuracy %, storage MB, avg bits, energy % of fp32): the paper's Table 2, DVS128 rows
PAPER_DVS128 = ((0, 98.26, 10.21, 32, 100), (0.5, 97.90, 0.982, 3.07, 16.73), (1.0, 97.57, 0.744, 2.33, 11.61),
                (1.5, 97.22, 0.688, 2.16, 9.81), (2.0, 96.87, 0.695, 2.18, 9.80))


def select_run(results: dict, max_drop: float) -> dict | None:
    """The exported run with the lowest energy among those within ``max_drop`` points of the
    baseline; else the most accurate exported run."""
    runs = [r for r in results["runs"] if r.get("export")]
    if not runs:
        return None
    ok = [r for r in runs if r["accuracy_drop"] <= max_drop]
    if ok:
        return min(ok, key=lambda r: (r["cost"]["energy_mj"], -r["accuracy"]))
    return max(runs, key=lambda r: r["accuracy"])


def _fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    base = results["baseline"]
    bc = base["cost"]
    cfg = results.get("config", {})
    lines = [
        "# SpikeHQ search report", "",
        f"Data set `{cfg.get('dataset')}`, preset `{cfg.get('preset')}`, seed {cfg.get('seed')}, "
        f"{results.get('world_size', 1)} process(es), {results.get('seconds', 0):.0f} s. "
        f"Baseline: fp32 trained for {base['epochs']} epochs, the same budget as warm-up + search + QAT.", "",
        "| model | β | accuracy % | Δ points | avg weight bits | storage MB | compression × | energy mJ "
        "| reduction × | golden agreement % |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| fp32 baseline | 0 | {base['accuracy']:.2f} | 0.00 | 32.00 | {bc['storage_mb']:.4f} | 1.0 | "
        f"{bc['energy_mj']:.5f} | 1.0 | n/a |",
    ]
    for r in results["runs"]:
        c = r["cost"]
        mark = " (selected)" if results.get("selected_beta") == r["beta"] else ""
        lines.append(f"| searched{mark} | {r['beta']:g} | {r['accuracy']:.2f} | {-r['accuracy_drop']:+.2f} | "
                     f"{c['avg_bits']:.2f} | {c['storage_mb']:.4f} | {r['storage_compression']:.1f} | "
                     f"{c['energy_mj']:.5f} | {r['energy_reduction']:.1f} | {_fmt(r.get('agreement'))} |")
    lines += ["", "Golden agreement: the bit-exact integer network (`golden/network.py`) run on the exported "
              "searched.json against the QAT model's test-set predictions.", ""]
    for r in results["runs"]:
        if r.get("agreement") is None:
            lines.append(f"* β={r['beta']:g}: no agreement check — {r.get('agreement_note', '')}.")
        elif r["agreement"] < 100:
            lines.append(f"* β={r['beta']:g}: {r['agreement']:.2f}% agreement.")
    if results["runs"]:
        lines += ["", "## Per-layer choices", "",
                  "| layer | group | weights | " + " | ".join(f"β={r['beta']:g}" for r in results["runs"]) + " |",
                  "|---|---|---|" + "---|" * len(results["runs"])]
        for i, layer in enumerate(results["runs"][0]["cost"]["layers"]):
            cells = [r["cost"]["layers"][i]["candidate"] for r in results["runs"]]
            lines.append(f"| {layer['name']} | {layer['group']} | {layer['params']} | " + " | ".join(cells) + " |")
        lines += ["", "## Energy / storage by group", "", "| model | " +
                  " | ".join(f"{g} mJ" for g in GROUPS) + " | " + " | ".join(f"{g} MB" for g in GROUPS) + " |",
                  "|---|" + "---|" * (2 * len(GROUPS))]
        rows = [("fp32", bc)] + [(f"β={r['beta']:g}", r["cost"]) for r in results["runs"]]
        for name, c in rows:
            lines.append(f"| {name} | " + " | ".join(f"{c['groups'][g]['energy_mj']:.5f}" for g in GROUPS) + " | "
                         + " | ".join(f"{c['groups'][g]['storage_mb']:.4f}" for g in GROUPS) + " |")
    lines += ["", "## Beside the paper", "",
              "SpikeHQ paper, Table 2, DVS128 Gesture (Spikformer-2-256, T=16), quoted for comparison: "
              + "; ".join(f"β={b}: {a} %, {mb} MB ({bits} bits), energy {e} % of fp32" for b, a, mb, bits, e in PAPER_DVS128)
              + ".", ""]
    paper = results.get("paper_preset")
    if paper:
        lines.append(f"This cost model on the `paper` preset: fp32 storage {paper['storage_mb_11']:.2f} MB (11 classes), "
                     f"{paper['storage_mb_101']:.2f} MB (101 classes); fp32 energy {paper['energy_mj_11']:.2f} mJ "
                     "(the paper's op-count conventions for energy are not stated; see docs/search.md).")
    exports = [r for r in results["runs"] if r.get("export")]
    if exports:
        lines += ["", "## Outputs", ""]
        for r in exports:
            lines.append(f"* β={r['beta']:g}: `{r['export']}`")
        if results.get("selected_beta") is not None:
            lines.append(f"* selected (β={results['selected_beta']:g}): `searched.json` — `make gen CONFIG=<out>/searched.json`")
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

    base, runs = results["baseline"], results["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "energy_mj", "energy per inference (mJ)"), (axes[1], "storage_mb", "weight storage (MB)")):
        ax.scatter([base["cost"][key]], [base["accuracy"]], marker="*", s=160, color="black", label="fp32 baseline")
        pts = sorted((r["cost"][key], r["accuracy"], r["beta"]) for r in runs)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="tab:red", label="SpikeHQ (β sweep)")
            for x, y, b in pts:
                ax.annotate(f"β={b:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Accuracy vs hardware cost")
    save(fig, "pareto.png")

    for r in runs:
        hist = r["history"]
        names = list(hist["probs"])
        blocks = sorted({n.split("_")[0] for n in names if n.startswith("b")})
        layer = f"{blocks[-1]}_q" if blocks else names[0]
        if not hist["step"]:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        probs = list(zip(*hist["probs"][layer]))
        for c, series in zip(CANDIDATES, probs):
            ax.plot(hist["step"], series, label=c)
        ax.set_xlabel("search step")
        ax.set_ylabel(f"selection probability ({layer})")
        ax.set_ylim(0, 1)
        ax2 = ax.twinx()
        ax2.plot(hist["step"], hist["loss"], color="gray", alpha=0.4, linewidth=0.8)
        ax2.set_ylabel("Step-1 loss (CE + β·hw)", color="gray")
        ax.legend(fontsize=8, loc="upper left")
        ax.set_title(f"Selection probabilities during the search, β={r['beta']:g}")
        save(fig, f"probs_beta_{r['beta']:g}.png".replace(".png", "").replace(".", "p") + ".png")

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
        ax.set_title("Per-layer quantization choices")
        save(fig, "choices.png")

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        rows = [("fp32", base["cost"])] + [(f"β={r['beta']:g}", r["cost"]) for r in runs]
        for ax, key, label in ((axes[0], "energy_mj", "energy (mJ)"), (axes[1], "storage_mb", "storage (MB)")):
            bottom = [0.0] * len(rows)
            for g in GROUPS:
                vals = [c["groups"][g][key] for _, c in rows]
                ax.bar([n for n, _ in rows], vals, bottom=bottom, label=g)
                bottom = [b + v for b, v in zip(bottom, vals)]
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.legend(fontsize=8)
        fig.suptitle("Hardware cost by group")
        save(fig, "breakdown.png")
    return written


def write_report(results: dict, out: str | Path, plots: bool = True) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results["plots"] = _plots(results, out) if plots else []
    write_json_atomic(out / "report.json", results, indent=1)
    write_atomic(out / "report.md", markdown(results))
    return results
