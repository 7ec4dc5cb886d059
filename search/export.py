"""Export a trained (QAT) :class:`SpikingTransformer` to ``searched.json`` + integer weights.

Format: ``golden/searched.schema.json`` (read back with :func:`golden.config.load_config` and
:func:`golden.config.load_weights`). Every conv/linear layer is one layer entry:

* codes: ``search.quantize.to_codes`` of the layer's weights with its scale (the same integers
  the integer-mode forward uses);
* bias / threshold per output channel: BatchNorm and scales folded as docs/arithmetic.md §8,
  ``b = round(c/g)``, ``θ = max(1, ceil(V_th/g))``, ``g = a·s_w`` (activations are integers,
  ``s_x = 1``), computed by the model's own :meth:`SpikingUnit.folded`;
* the neuron's scalar ``threshold`` is the median per-channel threshold (the weights file
  holds the per-channel values);
* A2OS2A's key layers (``b<i>_k``) get the stateless ``relu`` neuron with ``bits`` =
  ``key_bits`` and per-channel threshold ``ceil(key_step/g)`` (the same fold: the key step
  plays the threshold's part), ``k = clip(floor((I + b)/θ), 0, 2^bits − 1)`` (§4);
* the head has no neuron of its own in the model: it is exported as an integrate-and-fire
  neuron with soft reset, no leak and no bias (threshold ``T·B_I + 1``, above its membrane
  bound, capped at 2^20 − 1), so ``Σ_t I_t = h_T + θ·Σ_t S_t`` exactly (``= h_T`` when the
  threshold is out of reach); summed over the tokens, its argmax is the class (global average
  pooling commutes with the bias-free head);
* fp32 layers are listed without weights (``make gen`` skips them, docs/arithmetic.md §9);
* SpQuant (docs/search.md "SpQuant-SNN"): a learned threshold (``threshold_learning = "sgp"``)
  folds like the fixed one, ``θ = max(1, ceil(V_th/g))`` with the learned ``V_th``; the binary
  membrane exports as ``"membrane": "binary"``; channels a :class:`ChannelGate` masks are
  removed from the layer (codes, bias, threshold, ``out_channels``) and from the input
  channels of the layer reading it, so they get no memory, lanes or cycles (exact: a masked
  channel never spikes in the model); spatial pruning (``spatial_sparsity`` S > 0) writes each
  tokenizer conv's and the rpe's ``spatial_prune_k`` = ⌊S·H'·W'⌋, the model's own k
  (docs/arithmetic.md §6.1; a layer that also loses channels to a mask is refused: the model
  ranks positions over every channel, the exported layer would rank them over the kept ones).

The graph around the layers (pooling, residual adds, attention heads and the attention
neuron's integer threshold) goes into ``metadata.network`` for :mod:`golden.network`.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from ..atomic import write_json_atomic
from ..golden.codes import activation_max_abs, weight_max_abs
from ..golden.config import FORMAT, VERSION, WEIGHTS_FORMAT, ConfigError, config_from_dict
from ..golden.network import network_from_config
from . import quantize
from .cost import candidate_scheme

__all__ = ["export_network", "network_metadata", "ExportError"]


class ExportError(ConfigError):
    """The model cannot be expressed in the integer contract."""


def network_metadata(model) -> dict:
    cfg = model.cfg
    h, w = cfg.token_grid
    blk = model.blocks[0] if len(model.blocks) else None
    return {
        "architecture": "spikformer",
        "model": cfg.to_dict(),
        "token_grid": [h, w],
        "tokens": h * w,
        "attention": {"variant": cfg.attention, "heads": cfg.heads,
                      "threshold": int(torch.tensor(blk.attn_threshold()).ceil()) if blk else 1,
                      "neuron": {"type": cfg.neuron, "leak_shift": cfg.leak_shift, "reset": cfg.reset},
                      "membrane": "ternary" if cfg.membrane in ("ternary", "binary") else "integer"},
        "readout": "head: membrane after the last step + threshold x spike count (soft reset, no leak), summed over tokens, argmax",
    }


def _membrane(cfg) -> str:
    return {"ternary": "ternary", "binary": "binary"}.get(cfg.membrane, "integer")


def kept_channels(model) -> dict[str, torch.Tensor]:
    """Output channels each layer keeps (indices), for the layers with SpQuant channel masks."""
    return {name: unit.gate.kept() for name, unit in model.units().items() if unit.gate is not None}


def _pruned_inputs(model) -> dict[str, torch.Tensor]:
    """Input channels kept by the layer reading a channel-masked layer (the next tokenizer conv, fc2)."""
    kept, out = kept_channels(model), {}
    n_tok = len(model.tokenizer)
    for name, idx in kept.items():
        if name.startswith("tok"):
            i = int(name[3:])
            out[f"tok{i + 1}" if i + 1 < n_tok else "rpe"] = idx
        else:
            out[name.replace("_fc1", "_fc2")] = idx
    return out


def _spatial_prune_k(unit, shape) -> int:
    """The k of a layer's spatial pruning, ⌊S·H'·W'⌋ as the model's neuron takes it (0: off)."""
    if unit is None or unit.neuron.spatial_sparsity <= 0:
        return 0
    k, p = shape.kernel_size, shape.padding
    positions = (shape.height + 2 * p - k + 1) * (shape.width + 2 * p - k + 1)
    return int(unit.neuron.spatial_sparsity * positions)


def _codes_list(codes: torch.Tensor, kind: str) -> list:
    return codes.tolist() if kind == "conv2d" else codes.reshape(codes.shape[0], -1).tolist()


def export_network(model, out_dir: str | Path, *, name: str = "spikehq_searched", description: str = "",
                   metadata: dict | None = None, activity_frames: torch.Tensor | None = None,
                   activity_source: str = "") -> Path:
    """Write ``out_dir/searched.json`` and ``out_dir/weights/<layer>.json``; return the json path.

    ``activity_frames`` (int [B, T, C, H, W], e.g. training samples): the golden integer network
    runs them and every layer records its mean ``input_events`` per sample (for ``make gen``'s
    balanced lanes policy, which then needs no data or PyTorch); ``activity_source`` says what
    they are. Skipped when a layer is fp32 (no integer network exists)."""
    out_dir = Path(out_dir)
    wdir = out_dir / "weights"
    T = model.cfg.time_steps
    membrane = _membrane(model.cfg)
    units = model.units()
    kept_out, kept_in = kept_channels(model), _pruned_inputs(model)
    for name, kept in kept_out.items():
        unit = units[name]
        if _spatial_prune_k(unit, unit.layer.shape) and len(kept) < unit.layer.shape.out_channels:
            raise ExportError(f"layer {name!r}: spatial pruning and channel masks together do not export "
                              f"(the model ranks positions over all {unit.layer.shape.out_channels} channels, "
                              f"the masks keep {len(kept)}); use channel_threshold 0 or spatial_sparsity 0")
    entries = []
    with torch.no_grad():
        for layer in model.quant_layers():
            shape, cand = layer.shape, layer.candidate
            if cand is None:
                raise ExportError(f"layer {layer.name!r}: no candidate chosen (still in search mode)")
            scheme, bits = candidate_scheme(cand)
            entry = {"name": shape.name, "kind": shape.kind}
            rows = kept_out.get(layer.name, torch.arange(shape.out_channels))
            cols = kept_in.get(layer.name, torch.arange(shape.in_channels))
            O, C = len(rows), len(cols)
            if shape.kind == "linear":
                entry.update(in_features=C, out_features=O, tokens=shape.height)
            else:
                entry.update(in_channels=C, out_channels=O, kernel_size=shape.kernel_size, padding=shape.padding,
                             height=shape.height, width=shape.width)
            entry.update(scheme=scheme, bits=bits, activation_bits=layer.activation_bits)
            if layer.name == "head":
                x_max = activation_max_abs(layer.activation_bits)
                w_max = weight_max_abs(scheme, bits) if scheme != "fp32" else 1
                bound = T * C * shape.kernel_size ** 2 * w_max * x_max
                th = min(bound + 1, 2 ** 20 - 1)
                bias, threshold = [0] * O, [th] * O
                neuron = {"type": "lif", "threshold": th, "leak_shift": 0, "reset": "soft"}
                layer_membrane = "integer"
            else:
                unit = units[layer.name]
                neuron = {"type": unit.neuron.kind, "leak_shift": unit.neuron.leak_shift, "reset": unit.neuron.reset}
                layer_membrane = membrane
                if not unit.spiking:      # A2OS2A's integer ReLU key: stateless, threshold = key step
                    neuron = {"type": "relu", "bits": model.cfg.key_bits, "leak_shift": 0, "reset": "hard"}
                    layer_membrane = "integer"
                if scheme != "fp32":
                    b, th = (v[rows] for v in unit.folded())
                    bias, threshold = [int(v) for v in b.tolist()], [int(v) for v in th.tolist()]
                    if max(abs(v) for v in bias) >= 2 ** 30 or max(threshold) >= 2 ** 20:
                        raise ExportError(f"layer {layer.name!r}: folded bias/threshold out of range "
                                          f"(max |b| {max(abs(v) for v in bias)}, max θ {max(threshold)})")
                    neuron["threshold"] = max(1, int(statistics.median_low(threshold)))
                else:
                    neuron["threshold"] = 1
            neuron = {"type": neuron["type"], **({"bits": neuron["bits"]} if "bits" in neuron else {}),
                      "threshold": neuron["threshold"], "leak_shift": neuron["leak_shift"], "reset": neuron["reset"]}
            entry.update(neuron=neuron, membrane=layer_membrane)
            prune_k = _spatial_prune_k(units.get(layer.name), shape)
            if prune_k:
                entry["spatial_prune_k"] = prune_k
            if scheme != "fp32":
                scale = layer.scale(cand)
                scale_f = float(scale)
                codes = quantize.to_codes(layer.weight.detach(), scheme, bits, scale)[rows][:, cols]
                write_json_atomic(wdir / f"{shape.name}.json", {
                    "format": WEIGHTS_FORMAT, "version": VERSION, "layer": shape.name,
                    "codes": _codes_list(codes, shape.kind), "bias": bias, "threshold": threshold})
                entry.update(weights=f"weights/{shape.name}.json", weight_scale=scale_f)
            entry["group"] = shape.group
            entries.append(entry)
    meta = {"network": network_metadata(model)}
    meta.update(metadata or {})
    doc = {"format": FORMAT, "version": VERSION, "name": name, "time_steps": T,
           "description": description or "SpikeHQ search result (spikehq.search)",
           "metadata": meta, "layers": entries}
    path = out_dir / "searched.json"
    if activity_frames is not None and all(e["scheme"] != "fp32" for e in entries):
        net = network_from_config(config_from_dict(doc, source=path, base_dir=out_dir))
        events = net.input_events(activity_frames)
        for entry in entries:
            entry["input_events"] = events[entry["name"]]
        meta["activity"] = {"measured_by": "golden integer network", "samples": len(activity_frames),
                            "source": activity_source}
    write_json_atomic(path, doc, indent=1)
    return path
