"""Hardware table, before and after: per PE, per other engine and for the whole network top —
LUT/FF/BRAM/DSP, BRAM efficiency, Fmax, cycles per inference, inferences per second at that
Fmax, SOP per cycle, and the activity-based energy estimate (nJ per inference, pJ per SOP).

Usage (``make bench-hardware``)::

    make synth CONFIG=configs/digits_searched/searched.json TARGET=ecp5             # report.json (25F)
    make synth CONFIG=configs/digits_searched/searched.json TARGET=ecp5 DEVICE=85k  # the top where 25F is too small
    make bench-network                                                              # build/bench/network.json
    python benchmarks/bench_hardware.py --out docs

It reads those three reports, takes "before" from ``benchmarks/data/hardware_before.json``
(figures of the base commit, recorded with ``--record``), writes ``hardware.json`` and
``hardware.png`` under ``--out`` and replaces the table between the ``bench-hardware``
markers of ``docs/synthesis.md``. Nothing is synthesized or simulated here.

Where each figure comes from:

* area: out-of-context yosys of each PE / engine / the top (LUT = LUT4 + 2 × CCU2C, i.e. LUT eq.);
* BRAM efficiency: the top's memory table (bits needed / bits allocated, ``synth/memories.py``);
* Fmax: nextpnr in the harness; the top on the 25F when it fits, else on the 85F (marked);
* cycles per inference: back to back in the Verilator model (``make bench-network``): for the
  top the interval between results, for an engine its busy cycles per inference
  (``sim/profile.py``); inferences/s = Fmax / those cycles;
* SOP per cycle: the golden trace's synaptic operations per inference over those cycles;
* energy: ``synth/power.py`` energy per cycle × cycles per inference; a PE's from its own
  activity run; the top's from its area with the PEs' mean activity (LUT-weighted) and one
  clock network. **Estimates** (docs/synthesis.md, "Power").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from spikehq.atomic import atomic_path, write_atomic
from spikehq.synth.power import estimate_power

__all__ = ["collect", "render", "plot", "update_doc", "main"]

BEFORE = Path(__file__).parent / "data" / "hardware_before.json"
MARK_BEGIN, MARK_END = "<!-- bench-hardware:begin -->", "<!-- bench-hardware:end -->"
COLUMNS = ("lut", "ff", "bram", "dsp", "bram_eff", "fmax_mhz", "cycles", "inf_per_s", "sop_per_cycle",
           "nj_per_inference", "pj_per_sop")


def _load(path: Path | None, what: str) -> dict | None:
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} not found")
    return json.loads(path.read_text())


def collect(synth: dict, network: dict | None, synth_big: dict | None = None) -> dict:
    """The figures of one state of the code from its reports (see the module docstring)."""
    top = synth.get("top") or {}
    mem = {e["engine"]: e for e in (top.get("memories") or {}).get("engines", [])}
    policy = network["policies"][0] if network else None
    layers_sop = network["layers"][policy["policy"]] if network else {}
    profile = (policy or {}).get("engine_cycles") or {}
    n = len(network["samples"]) if network else 1
    busy = {k: v["busy"] / n for k, v in profile.get("engines", {}).items()}
    rows = []
    for layer in synth["layers"]:
        a, name = layer["area"], layer["name"]
        cycles = busy.get(name)
        e_cycle = (layer.get("power") or {}).get("energy_per_cycle_pj")
        rows.append(_row(name, "PE", a, mem.get(name), (layer["pnr"] or {}).get("fmax_mhz"), cycles,
                         layers_sop.get(name, {}).get("sop"), e_cycle))
    for eng in synth.get("engines", []):
        rows.append(_row(eng["name"], eng["kind"], eng["area"], mem.get(eng["name"]), eng["fmax_mhz"],
                         busy.get(eng["name"]), None, None))
    if top.get("synthesized"):
        pnr, device = top.get("pnr") or {}, synth["device"]
        if not pnr.get("placed") and synth_big and (synth_big.get("top") or {}).get("pnr", {}).get("placed"):
            pnr, device = synth_big["top"]["pnr"], synth_big["device"]
        interval = policy["back_to_back_cycles"] if policy else None
        sop = sum(f["sop"] for f in layers_sop.values()) if network else None
        rows.append(_row("network top", "top", top["area"], (top.get("memories") or {}).get("total"),
                         pnr.get("fmax_mhz"), interval, sop, _top_energy(synth, top["area"]),
                         note=f"Fmax on {device}" + ("" if pnr.get("placed") else " (not placed)")))
    return {"network": synth["network"], "target": synth["target"], "device": synth["device"], "rows": rows}


def _top_energy(synth: dict, area: dict) -> float | None:
    """Energy per cycle of the whole top: its area, the PEs' LUT-weighted mean activity, one clock."""
    acts = [(l["area"]["lut_equiv"], l["activity"]) for l in synth["layers"] if "activity" in l]
    if not acts:
        return None
    weight = sum(w for w, _ in acts)
    mean = {k: sum(w * a[k] for w, a in acts) / weight
            for k in ("toggle_rate", "mac_active_fraction", "memory_active_fraction")}
    return estimate_power(synth["target"], synth["device_name"], area, mean, 1.0)["energy_per_cycle_pj"]


def _row(name, kind, area, mem, fmax, cycles, sop, e_cycle, note="") -> dict:
    row = {"name": name, "kind": kind, "lut": area["lut_equiv"], "ff": area["ff"], "bram": area["bram"],
           "dsp": area["dsp"], "bram_eff": (mem or {}).get("efficiency"), "fmax_mhz": fmax,
           "cycles": round(cycles, 1) if cycles else None, "note": note}
    row["inf_per_s"] = round(fmax * 1e6 / cycles, 1) if fmax and cycles else None
    row["sop_per_cycle"] = round(sop / cycles, 3) if sop and cycles else None
    row["nj_per_inference"] = round(e_cycle * cycles * 1e-3, 2) if e_cycle and cycles else None
    row["pj_per_sop"] = round(row["nj_per_inference"] * 1e3 / sop, 2) if row["nj_per_inference"] and sop else None
    return row


def render(before: dict | None, after: dict) -> str:
    """One Markdown table: a row per design, "before → after" in every cell."""
    heads = ["design", "LUT eq.", "FF", "BRAM", "DSP", "BRAM eff.", "Fmax MHz", "cycles/inference",
             "inferences/s", "SOP/cycle", "nJ/inference (est.)", "pJ/SOP (est.)"]
    old = {r["name"]: r for r in (before or {}).get("rows", [])}
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in after["rows"]:
        b = old.get(r["name"], {})
        cells = [_cell(b.get(k), r.get(k), k) for k in COLUMNS]
        label = f"**{r['name']}**" if r["kind"] == "top" else f"{r['name']} ({r['kind']})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    notes = [r["note"] for r in after["rows"] if r.get("note")]
    lines += ["", f"{after['network']} on {after['target']} {after['device']}; each cell is before → after "
              "(before: the base commit's figures, benchmarks/data/hardware_before.json). "
              "cycles/inference: back to back, busy cycles per inference for an engine, the interval between "
              "results for the top. " + " ".join(f"Top: {n}." for n in notes)]
    return "\n".join(lines) + "\n"


def _cell(before, after, key) -> str:
    fmt = lambda v: "—" if v is None else (f"{100 * v:.0f} %" if key == "bram_eff" else
                                           f"{v:,.0f}" if key in ("inf_per_s",) or isinstance(v, int) else
                                           f"{v:.1f}" if key in ("fmax_mhz", "cycles", "nj_per_inference") else
                                           f"{v:.2f}")
    return fmt(after) if before is None or before == after else f"{fmt(before)} → {fmt(after)}"


def plot(before: dict | None, after: dict, path: Path) -> None:
    """Fmax per design and the top's resources over the 25F's capacity, before and after."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    old = {r["name"]: r for r in (before or {}).get("rows", [])}
    rows = [r for r in after["rows"] if r.get("fmax_mhz")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    x = np.arange(len(rows))
    ax1.bar(x - 0.2, [old.get(r["name"], {}).get("fmax_mhz") or 0 for r in rows], 0.4, label="before", color="#999")
    ax1.bar(x + 0.2, [r["fmax_mhz"] for r in rows], 0.4, label="after", color="#1f77b4")
    for goal in (100, 150):
        ax1.axhline(goal, color="#d62728", lw=0.8, ls="--")
    ax1.set_xticks(x, [r["name"] for r in rows], rotation=60, fontsize=7)
    ax1.set_ylabel("Fmax (MHz, nextpnr)")
    ax1.legend(fontsize=8)
    top = next((r for r in after["rows"] if r["kind"] == "top"), None)
    if top:
        cap = {"lut": 24288, "ff": 24288, "bram": 56, "dsp": 28}
        keys = list(cap)
        xb = np.arange(len(keys))
        b = old.get(top["name"], {})
        ax2.bar(xb - 0.2, [100 * (b.get(k) or 0) / cap[k] for k in keys], 0.4, color="#999", label="before")
        ax2.bar(xb + 0.2, [100 * (top.get(k) or 0) / cap[k] for k in keys], 0.4, color="#1f77b4", label="after")
        ax2.axhline(100, color="#d62728", lw=0.8, ls="--")
        ax2.set_xticks(xb, ["LUT eq.", "FF", "DP16KD", "MULT18"])
        ax2.set_ylabel("% of an LFE5U-25F")
        ax2.set_title("network top", fontsize=9)
    fig.suptitle(f"{after['network']}: before and after ({after['target']})", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def update_doc(doc: Path, table: str) -> None:
    """Replace the text between the bench-hardware markers of ``doc`` (they must be there)."""
    text = doc.read_text()
    pattern = re.compile(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{doc}: no '{MARK_BEGIN}' … '{MARK_END}' markers to put the table between")
    write_atomic(doc, pattern.sub(lambda _: f"{MARK_BEGIN}\n{table}{MARK_END}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_hardware.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--synth", default="build/synth/spikehq_digits_beta_0p5_ecp5_25k/report.json",
                        help="make synth's report.json on the LFE5U-25F (PEs, engines, top)")
    parser.add_argument("--synth-85k", default="build/synth/spikehq_digits_beta_0p5_ecp5_85k/report.json",
                        help="make synth's report.json on the LFE5U-85F: the top's Fmax when it does not fit the "
                             "25F (optional; skipped when missing)")
    parser.add_argument("--network", default="build/bench/network.json", help="make bench-network's output")
    parser.add_argument("--before", default=str(BEFORE), help="recorded figures of the base commit")
    parser.add_argument("--record", default=None, help="write the current figures here (to record a 'before')")
    parser.add_argument("--note", default="", help="with --record: where the figures come from (commit, commands)")
    parser.add_argument("--out", default="docs", help="folder of hardware.json and hardware.png (default docs)")
    parser.add_argument("--doc", default="docs/synthesis.md", help="the document whose table is replaced")
    args = parser.parse_args(argv)
    try:
        synth = _load(Path(args.synth), "--synth")
        big = _load(Path(args.synth_85k), "--synth-85k") if Path(args.synth_85k).is_file() else None
        after = collect(synth, _load(Path(args.network), "--network"), big)
        if args.record:
            after["recorded_from"] = {"synth": args.synth, "synth_85k": args.synth_85k, "network": args.network,
                                      "note": args.note}
            write_atomic(Path(args.record), json.dumps(after, indent=1) + "\n")
            print(f"recorded {args.record}")
            return 0
        before = _load(Path(args.before), "--before") if Path(args.before).is_file() else None
        table = render(before, after)
        out = Path(args.out)
        write_atomic(out / "hardware.json", json.dumps({"before": before, "after": after}, indent=1) + "\n")
        plot(before, after, out / "hardware.png")
        update_doc(Path(args.doc), table)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {out / 'hardware.json'}, {out / 'hardware.png'} and the table in {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
