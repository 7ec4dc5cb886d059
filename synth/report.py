"""``make synth``'s report.md: the Markdown rendering of a report.json (``synth/config_flow.py``).

Presentation only: every figure comes from the report dict as written to report.json.
"""

from __future__ import annotations

__all__ = ["render_markdown"]


def render_markdown(report: dict) -> str:
    """report.md of a ``make synth`` report (the dict written to report.json)."""
    has_pnr = any(l["pnr"] for l in report["layers"])
    has_power = any("power" in l for l in report["layers"])
    lines = [f"# Synthesis report: {report['network']} on {report['family']} {report['device']}", "",
             f"Config `{report['config']}` (sha256 {report['config_sha256'][:12]}), clock target "
             f"{report['clock_target_mhz']:g} MHz, lanes policy `{report.get('lanes_policy', 'config')}`. Area: out-of-context yosys synthesis of each layer's PE"
             + (" and of the network top. " if (report.get("top") or {}).get("synthesized") else ". ")
             + ("Fmax: nextpnr, PE inside a pin-limited harness (docs/synthesis.md). " if has_pnr else
                "No place and route for this target: no Fmax. ")
             + ("Power: **estimate** from Verilator switching activity and the coefficients listed below." if has_power else ""),
             "",
             "| layer | scheme | act. bits | lanes | LUT | LUT eq. | FF | DSP | BRAM | Fmax MHz | dyn. mW | nJ/sample (est.) | analytic nJ/inference |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for l in report["layers"]:
        a, p, pw = l["area"], l["pnr"], l.get("power", {})
        lines.append(f"| {l['name']} | {l['scheme']}{l['bits']} | {l['activation_bits']} | {l['lanes']} | {a['lut']} | "
                     f"{a['lut_equiv']} | {a['ff']} | {a['dsp']} | {_fmt(a['bram'])} | "
                     f"{_fmt(p['fmax_mhz']) if p else '—'} | {_fmt(pw.get('dynamic_mw'), 2)} | "
                     f"{_fmt(pw.get('energy_per_sample_nj'), 1)} | {_fmt(l['analytic']['energy_per_inference_nj'], 1)} |")
    t = report["total"]
    tp = t.get("power", {})
    lines.append(f"| **total** | | | | {t['area']['lut']} | {t['area']['lut_equiv']} | {t['area']['ff']} | "
                 f"{t['area']['dsp']} | {_fmt(t['area']['bram'])} | {_fmt(t['fmax_mhz'])} | "
                 f"{_fmt(tp.get('dynamic_mw'), 2)} | {_fmt(tp.get('energy_per_sample_nj'), 1)} | "
                 f"{_fmt(tp.get('analytic_energy_per_inference_nj'), 1)} |")
    top = report.get("top") or {}
    if top.get("synthesized"):
        ta = top["area"]
        tp_ = top.get("pnr") or {}
        lines.append(f"| **network top** (one design) | | | | {ta['lut']} | {ta['lut_equiv']} | {ta['ff']} | {ta['dsp']} | "
                     f"{_fmt(ta['bram'])} | {_fmt(tp_.get('fmax_mhz'))} | | | |")
    lines += ["", "Total = sum of the layers (each PE alone); total Fmax = the slowest layer. "
              + ("Network top = the whole network synthesized as one design (section below)." if top.get("synthesized")
                 else "The network top is not synthesized (section below)." if top.get("module") else ""),
              "Device utilization of the total: " + ", ".join(
                  f"{k.upper()} {v:g} %" for k, v in t["utilization_pct"].items()) + "."]
    for s in report["skipped"]:
        lines.append(f"Layer `{s['name']}` has no hardware: {s['reason']}.")
    lines += _top_markdown(report) + _engines_markdown(report)
    if has_pnr:
        lines += ["", "## Place and route", "",
                  "| layer | Fmax MHz | meets target | harness FF overhead | used (harness) |", "|---|---|---|---|---|"]
        for l in report["layers"]:
            p = l["pnr"]
            used = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in sorted(p["utilization"].items()) if v["used"])
            lines.append(f"| {l['name']} | {p['fmax_mhz']:.1f} | {'yes' if p['meets_constraint'] else 'no'} | "
                         f"{p['harness_overhead_ffs']} | {used} |")
    if has_power:
        lines += ["", "## Power (estimates)", "",
                  "| layer | clock MHz | toggle rate | MAC active | energy/cycle pJ (clock + logic + DSP + BRAM) | dynamic mW | static mW |",
                  "|---|---|---|---|---|---|---|"]
        for l in report["layers"]:
            pw, b = l["power"], l["power"]["breakdown_pj"]
            lines.append(f"| {l['name']} | {pw['clock_mhz']:.1f} | {pw['toggle_rate']:.3f} | "
                         f"{l['activity']['mac_active_fraction']:.2f} | {pw['energy_per_cycle_pj']:.1f} = {b['clock']:.1f} + "
                         f"{b['logic']:.1f} + {b['dsp']:.1f} + {b['bram']:.1f} | {pw['dynamic_mw']:.2f} | {_fmt(pw['static_mw'], 3)} |")
        l0 = report["layers"][0]["activity"]
        lines += ["", f"Activity: Verilator run of seeded input events (density {l0['density']}, {l0['samples']} samples of "
                  f"T steps per layer, consumer always ready). *Analytic* is the search's cost model "
                  "(search/cost.py: dense MAC count × 45 nm energy + weight DRAM traffic); the RTL estimate is "
                  "event-driven and keeps weights on chip, so the two answer different questions.", "",
                  "Coefficient sources:", ""]
        lines += [f"- `{k}`: {v}" for k, v in report.get("power_sources", {}).items()]
    return "\n".join(lines) + "\n"


def _top_markdown(report: dict) -> list[str]:
    top = report.get("top")
    if not top:
        return []
    if not top.get("synthesized"):
        name = f" `{top['module']}`" if top.get("module") else ""
        return ["", f"Network top{name}: {top['reason']}."]
    util = top["utilization_pct"]
    fit = _fit_markdown(report)
    verdict = ("fits the device by these counts (before packing and routing)" if top["fits"] else
               "**does not fit the device**: " + ", ".join(f"{k.upper().replace('_EQUIV', ' eq.')} {util[k]:g} %"
                                                          for k in top["over_capacity"]))
    wall = f"{top['yosys_wall_s']:g} s" if top.get("yosys_wall_s") is not None else "unknown"
    a = top["area"]
    lines = ["", "## Network top", "",
             f"The whole network as one design (`{top['module']}`, {top['engines']} engines chained by streams, "
             "with glue, attention and readout), synthesized out of context with yosys (`synth_*` + `stat`) under the "
             "same lanes policy as the PEs" + ("" if report.get("share_roms", True) else
                                               ", every weight ROM bank in its PE (--no-share-roms)")
             + ". LUT RAM cells are not counted in LUT or LUT eq.", "",
             "| design | LUT | CCU2C | LUT eq. | FF | DSP | BRAM | LUT RAM |", "|---|---|---|---|---|---|---|---|",
             f"| **network top** | {a['lut']} | {a['carry']} | {a['lut_equiv']} | {a['ff']} | "
             f"{a['dsp']} | {_fmt(a['bram'])} | {a['lutram']} |", "",
             f"Device utilization of the top on {report['device']}: " + ", ".join(
                 f"{k.upper().replace('_EQUIV', ' eq.')} {v:g} %" for k, v in util.items()) + f"; it {verdict}.",
             f"yosys wall time of the run that produced it: {wall}" + (" (read from the cache now)." if top["cached"] else ".")]
    return lines + fit + _top_pnr_markdown(top) + _memory_markdown(top.get("memories"))


def _fit_markdown(report: dict) -> list[str]:
    """The ``fit`` lanes policy's tries (config_flow.fit_lanes), when it ran."""
    tried = report.get("lanes_tried") or []
    if not tried:
        return []
    lines = ["", f"Lanes policy `fit`: the fastest `balanced:N` whose top fits {report['device']}, tried in order "
             f"(`make gen LANES={report['lanes_policy']}` generates the chosen one):", "",
             "| lanes | DP16KD / BRAM | DSP | LUT eq. | fits |", "|---|---|---|---|---|"]
    for t in tried:
        over = ", ".join(t["over_capacity"])
        lines.append(f"| `{t['lanes']}` | {_fmt(t['bram'])} | {t['dsp']} | {t['lut_equiv']} | "
                     + ("yes |" if t["fits"] else f"no ({over}) |"))
    return lines


def _top_pnr_markdown(top: dict) -> list[str]:
    p = top.get("pnr")
    if not p:
        return []
    if not p.get("placed"):
        return ["", f"**Place and route** on {p['device']}: not run, {p['reason']}."]
    cp = p["critical_path"]
    used = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in sorted(p["utilization"].items()) if v["used"])
    return ["", "### Place and route of the top", "",
            f"nextpnr, the top inside the pin-limited harness (serial input, XOR-reduced registered output) on "
            f"{p['device']}: **Fmax {p['fmax_mhz']:.1f} MHz** (target {p['constraint_mhz']:g} MHz, "
            f"meets target: {'yes' if p['meets_constraint'] else 'no'}); nextpnr wall time "
            f"{_fmt(p.get('nextpnr_wall_s'))} s.", "",
            f"Used (harness included): {used}.", "",
            f"Critical path: {_fmt(cp['delay_ns'], 2)} ns, {cp.get('logic_levels', 0)} logic hops, "
            f"{_fmt(cp.get('routing_ns'), 2)} ns of it routing; through " + " → ".join(f"`{e}`" for e in cp["engines"])
            + f"; from `{cp['hops'][0]['from'] if cp['hops'] else '—'}` to `{cp['hops'][-1]['to'] if cp['hops'] else '—'}`."]


def _memory_markdown(mem: dict | None) -> list[str]:
    if not mem:
        return []
    lines = ["", "### Memory efficiency of the top", "",
             "Needed = depth × word width of every memory of the Verilog (what it holds); allocated = DP16KD × 18432 "
             "+ LUT RAM cells × 64 + register bits of memories mapped to flip-flops. Per engine (`a+b`: a block RAM "
             "holding weight ROM banks of engines a and b, one on each port):", "",
             "| engine | needed bits | allocated bits | efficiency | DP16KD | LUT RAM cells | FF bits |",
             "|---|---|---|---|---|---|---|"]
    for e in mem["engines"] + [dict(mem["total"], engine="**total**")]:
        lines.append(f"| {e['engine']} | {e['needed_bits']} | {e['allocated_bits']} | "
                     f"{_pct(e['efficiency'])} | {e['bram']} | {e['lutram']} | {e['ff_bits']} |")
    return lines


def _engines_markdown(report: dict) -> list[str]:
    rows = report.get("engines") or []
    if not rows:
        return []
    lines = ["", "## Engines of the top besides the PEs", "",
             "Each alone, out of context (area) and placed and routed in the harness (Fmax), as the PEs.", "",
             "| engine | kind | LUT | LUT eq. | FF | DSP | BRAM | LUT RAM | Fmax MHz |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["area"]
        lines.append(f"| {r['name']} | {r['kind']} | {a['lut']} | {a['lut_equiv']} | {a['ff']} | {a['dsp']} | "
                     f"{_fmt(a['bram'])} | {a['lutram']} | {_fmt(r['fmax_mhz'])} |")
    return lines


def _pct(v):
    return "—" if v is None else f"{100 * v:.1f} %"


def _fmt(v, nd=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)
