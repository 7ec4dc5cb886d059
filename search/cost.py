"""Hardware cost model of the SpikeHQ search (paper eq. 7–9, Table 1). Torch-free.

Per layer and quantization candidate (one inference of ``T`` time steps):

    E = T · N_ops · e_op(candidate) + S · e_bit(candidate)                      (eq. 7)

* ``N_ops`` — multiplications per time step, dense count (eq. 8–9): linear
  ``tokens · d_in · d_out``; conv ``H' · W' · k² · c_in · c_out`` (stride 1).
* ``S`` — weight storage in bits: ``b · (number of weights)`` (biases, BatchNorm and
  thresholds are not counted, as in the paper: this gives its 10.21 MB / 10.30 MB).
* ``e_op`` — energy of one multiply-accumulate, 45 nm, from the paper's Table 1 (pJ):

  ========  =====  =====  =====  =====
  format    mult   add    shift  DRAM
  ========  =====  =====  =====  =====
  FP32      3.7    1.1    0.13   650
  INT8      0.2    0.03   0.024  163
  ========  =====  =====  =====  =====

  Scaling choices (spikehq's, the paper does not state them):

  - ``fp32``: ``e_mult + e_add`` of the FP32 row (4.8 pJ).
  - ``uni b``: an integer multiplier of a b-bit weight by an 8-bit activation has ``b·8``
    partial products, so ``e_mult = 0.2 · b/8``; the accumulation is an INT8 add (0.03).
  - ``pot b``: a barrel shifter's energy grows with its number of stages, the bits of the
    shift amount. An INT8 shifter has 3 stages (shifts 0…7) for 0.024 pJ; a b-bit PoT weight
    shifts by 0…E, ``E = 2^(b-1) − 2``, i.e. ``ceil(log2(E+1))`` stages: 3 for 4 bits, 0 for
    2 bits (weights ±1, 0: only the add/subtract remains). Plus the INT8 add.
  - DRAM energy per **bit**: the table's figure is per word access, 650/32 pJ per bit for
    FP32 and 163/8 pJ per bit for INT8 (both ≈ 20.3 pJ/bit); b-bit integer weights use the
    INT8 figure per bit.

Two op-count conventions (``--cost``):

* ``dense`` — every layer does ``N_ops`` multiply-accumulates per step, whatever its input.
* ``paper`` — the spiking-transformer energy literature's (Spikformer and successors):
  a layer whose input is binary spikes does one **accumulate per input spike** and weight,
  ``SOPs = r · N_ops`` with ``r`` the layer's input spike rate measured on data (events per
  input activation and step), at the format's ``e_add`` (FP32 1.1 pJ, integers INT8 0.03 pJ);
  a layer with **multi-bit** input (the residual stream into q/k/v/fc1/head) or the first
  layer (the encoding layer, counted as MACs in that literature) does ``N_ops`` dense
  multiply-accumulates at ``e_op`` as above. Storage as in ``dense``.
  ``E = Σ SOPs·E_AC + Σ MACs·E_MAC + S·e_bit``.

Groups (paper Fig. 4): ``tokenizer`` (spiking tokenizer convs and the relative-position conv),
``attention`` (q, k, v, output projection), ``mlp``, ``head``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..golden.codes import pot_max_exponent

__all__ = ["ENERGY_PJ", "CANDIDATES", "GROUPS", "COSTS", "LayerShape", "Activity", "layer_activity",
           "rates_by_role", "sop_energy_pj", "candidate_scheme", "candidate_name",
           "op_energy_pj", "dram_energy_per_bit_pj", "layer_ops", "layer_params", "storage_bits",
           "layer_energy_pj", "network_cost", "shapes_from_config", "SpQuantLayer", "spquant_memory_bits",
           "spquant_flops"]

ENERGY_PJ = {
    "fp32": {"mult": 3.7, "add": 1.1, "shift": 0.13, "dram": 650.0, "word_bits": 32},
    "int8": {"mult": 0.2, "add": 0.03, "shift": 0.024, "dram": 163.0, "word_bits": 8},
}
CANDIDATES = ("fp32", "pot2", "pot4", "uni2", "uni4")
COSTS = ("dense", "paper")
GROUPS = ("tokenizer", "attention", "mlp", "head")
_SCHEME = {"fp32": ("fp32", 32), "pot2": ("pot", 2), "pot4": ("pot", 4), "uni2": ("uniform", 2),
           "uni4": ("uniform", 4)}


def candidate_scheme(name: str) -> tuple[str, int]:
    """Candidate name (fp32, pot2, pot4, uni2, uni4) → (scheme, bits) as in searched.json."""
    try:
        return _SCHEME[name]
    except KeyError:
        raise ValueError(f"Candidate must be one of {', '.join(CANDIDATES)}, not {name!r}") from None


def candidate_name(scheme: str, bits: int) -> str:
    for name, value in _SCHEME.items():
        if value == (scheme, bits):
            return name
    raise ValueError(f"No candidate with scheme {scheme!r} and {bits} bits")


@dataclass(frozen=True)
class LayerShape:
    """Geometry of one conv/linear layer. A linear layer is ``kernel_size = 1`` over
    ``height = tokens``, ``width = 1`` pixels (as in :class:`golden.config.LayerConfig`)."""

    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel_size: int = 1
    padding: int = 0
    height: int = 1
    width: int = 1
    group: str = "tokenizer"

    @property
    def out_pixels(self) -> int:
        k, p = self.kernel_size, self.padding
        return (self.height + 2 * p - k + 1) * (self.width + 2 * p - k + 1)


def layer_params(layer: LayerShape) -> int:
    return layer.out_channels * layer.in_channels * layer.kernel_size ** 2


def layer_ops(layer: LayerShape) -> int:
    """Multiplications per time step (eq. 8–9)."""
    return layer.out_pixels * layer_params(layer)


def storage_bits(layer: LayerShape, candidate: str) -> int:
    return candidate_scheme(candidate)[1] * layer_params(layer)


def _shift_stages(bits: int) -> int:
    return math.ceil(math.log2(pot_max_exponent(bits) + 1))


def op_energy_pj(candidate: str) -> float:
    """Energy of one multiply-accumulate (pJ) under ``candidate`` (see module docstring)."""
    scheme, bits = candidate_scheme(candidate)
    fp, i8 = ENERGY_PJ["fp32"], ENERGY_PJ["int8"]
    if scheme == "fp32":
        return fp["mult"] + fp["add"]
    if scheme == "uniform":
        return i8["mult"] * bits / 8 + i8["add"]
    return i8["shift"] * _shift_stages(bits) / 3 + i8["add"]      # INT8 shifter: 3 stages


def dram_energy_per_bit_pj(candidate: str) -> float:
    row = ENERGY_PJ["fp32"] if candidate == "fp32" else ENERGY_PJ["int8"]
    return row["dram"] / row["word_bits"]


@dataclass(frozen=True)
class Activity:
    """What the ``paper`` convention needs of a layer: its input spike rate (non-zero input
    activations per input activation and step, measured on data) and whether its input is
    multi-bit (or the encoding layer), i.e. counted as dense MACs."""

    input_rate: float
    multibit: bool


def layer_activity(layers, rates: dict[str, float], activation_bits: dict[str, int]) -> dict[str, Activity]:
    """``Activity`` per layer: multi-bit when ``activation_bits > 1`` or the first layer."""
    out = {}
    for i, layer in enumerate(layers):
        rate = rates.get(layer.name)
        if rate is None or not 0 <= rate <= 1:
            raise ValueError(f"layer {layer.name!r}: input spike rate must be in [0, 1], got {rate}")
        out[layer.name] = Activity(float(rate), i == 0 or activation_bits[layer.name] > 1)
    return out


def _role(name: str) -> str:
    if name.startswith("tok") and name != "tok0":
        return "tok"
    return name.split("_", 1)[1] if name.startswith("b") and "_" in name else name


def rates_by_role(rates: dict[str, float], layers) -> dict[str, float]:
    """Transfer measured input rates to another network's ``layers`` by role (tok0, the later
    tokenizer convs, rpe, q, k, v, proj, fc1, fc2, head), averaging the source layers of a role."""
    by_role: dict[str, list[float]] = {}
    for name, r in rates.items():
        by_role.setdefault(_role(name), []).append(r)
    out = {}
    for layer in layers:
        vals = by_role.get(_role(layer.name))
        if not vals:
            raise ValueError(f"layer {layer.name!r}: no measured rate for role {_role(layer.name)!r}")
        out[layer.name] = sum(vals) / len(vals)
    return out


def sop_energy_pj(candidate: str) -> float:
    """Energy of one accumulate per input spike (pJ): the format's add (FP32 or INT8 row)."""
    return ENERGY_PJ["fp32" if candidate == "fp32" else "int8"]["add"]


def _compute(layer: LayerShape, candidate: str, time_steps: int, activity: Activity | None) -> tuple[float, float, float]:
    """(MACs, SOPs, compute energy pJ) of one inference."""
    dense = time_steps * layer_ops(layer)
    if activity is None or activity.multibit:
        return dense, 0.0, dense * op_energy_pj(candidate)
    sops = dense * activity.input_rate
    return 0.0, sops, sops * sop_energy_pj(candidate)


def layer_energy_pj(layer: LayerShape, candidate: str, time_steps: int, activity: Activity | None = None) -> float:
    """Eq. 7 for one inference of ``time_steps`` steps (pJ); ``activity`` None is the ``dense``
    convention, else the ``paper`` one (module docstring)."""
    return (_compute(layer, candidate, time_steps, activity)[2]
            + storage_bits(layer, candidate) * dram_energy_per_bit_pj(candidate))


def network_cost(layers, choices: dict[str, str] | str, time_steps: int,
                 activity: dict[str, Activity] | None = None) -> dict:
    """Totals and per-group / per-layer figures for a configuration.

    ``choices`` maps layer name → candidate, or is one candidate for every layer; ``activity``
    (layer name → :class:`Activity`) selects the ``paper`` convention. Returns a dict with
    ``storage_mb`` (10^6 bytes), ``energy_mj``, ``avg_bits`` (storage bits per weight),
    ``params``, ``ops`` (dense, per time step), ``macs``/``sops`` (per inference), ``groups``
    and ``layers``.
    """
    zero = lambda: {"storage_mb": 0.0, "energy_mj": 0.0, "params": 0, "ops": 0}
    groups = {g: zero() for g in GROUPS}
    per_layer = []
    tot = {"bits": 0, "energy": 0.0, "params": 0, "ops": 0, "macs": 0.0, "sops": 0.0}
    for layer in layers:
        cand = choices if isinstance(choices, str) else choices[layer.name]
        bits = storage_bits(layer, cand)
        macs, sops, _ = _compute(layer, cand, time_steps, None if activity is None else activity[layer.name])
        energy = layer_energy_pj(layer, cand, time_steps, None if activity is None else activity[layer.name]) * 1e-9
        params, ops = layer_params(layer), layer_ops(layer)
        group = groups.setdefault(layer.group, zero())
        group["storage_mb"] += bits / 8e6
        group["energy_mj"] += energy
        group["params"] += params
        group["ops"] += ops
        per_layer.append({"name": layer.name, "group": layer.group, "candidate": cand, "params": params,
                          "ops": ops, "macs": macs, "sops": sops, "storage_mb": bits / 8e6, "energy_mj": energy})
        for k, v in (("bits", bits), ("energy", energy), ("params", params), ("ops", ops), ("macs", macs),
                     ("sops", sops)):
            tot[k] += v
    return {"storage_mb": tot["bits"] / 8e6, "energy_mj": tot["energy"],
            "avg_bits": tot["bits"] / tot["params"] if tot["params"] else 0.0,
            "params": tot["params"], "ops": tot["ops"], "macs": tot["macs"], "sops": tot["sops"],
            "convention": "dense" if activity is None else "paper", "groups": groups, "layers": per_layer}


def shapes_from_config(config) -> list[LayerShape]:
    """Layer shapes of a loaded :class:`golden.config.NetworkConfig` (``group`` defaults to tokenizer)."""
    return [LayerShape(name=l.name, kind=l.kind, in_channels=l.in_channels, out_channels=l.out_channels,
                       kernel_size=l.kernel_size, padding=l.padding, height=l.height, width=l.width,
                       group=l.group or "tokenizer") for l in config.layers]


# ---- SpQuant-SNN's measures (its eq. 28–30) -------------------------------------------------------

@dataclass(frozen=True)
class SpQuantLayer:
    """One layer as SpQuant's memory and FLOPs measures see it: its shape (channels already
    without the pruned ones), weight, membrane-state and spike precisions in bits, and the
    share of output positions pruned (``spatial_sparsity``, S_p)."""

    shape: LayerShape
    weight_bits: int
    membrane_bits: float
    spike_bits: int = 1
    spatial_sparsity: float = 0.0


def spquant_memory_bits(layers: list[SpQuantLayer]) -> dict:
    """Eq. 28–29: ``M = w_p·N_w + u_p·N_f + u_s·N_f``, ``N_w`` the weights, ``N_f = Σ C·W·H``
    the output neurons (C output channels on the W×H output map), summed layer by layer with
    each layer's own precisions. Bits, with the three terms."""
    weights = sum(l.weight_bits * layer_params(l.shape) for l in layers)
    membranes = sum(l.membrane_bits * l.shape.out_channels * l.shape.out_pixels for l in layers)
    spikes = sum(l.spike_bits * l.shape.out_channels * l.shape.out_pixels for l in layers)
    return {"weights": weights, "membranes": membranes, "spikes": spikes, "total": weights + membranes + spikes}


def spquant_flops(layers: list[SpQuantLayer], time_steps: int, batch: int = 1) -> float:
    """Eq. 30 as printed, per layer ``2·C(1−S_c)·W·H·k² + T·B·C(1−S_c)·W·H·(1−S_p)``: the
    first term the convolution, the second the membrane updates of the active positions.
    ``C(1−S_c)`` is the kept output channels (``shape.out_channels``); ``B`` the batch (1: one
    sample). The printed first term has no input-channel factor; it is kept as printed."""
    total = 0.0
    for l in layers:
        c, hw, k = l.shape.out_channels, l.shape.out_pixels, l.shape.kernel_size
        total += 2 * c * hw * k * k + time_steps * batch * c * hw * (1 - l.spatial_sparsity)
    return total
