"""Regenerate configs/example_tiny.json and its weights (seeded, deterministic).

    .venv/bin/python configs/make_example.py

Random float weights are quantized with spikehq's own quantizers (search/quantize.py), so the
example exercises the same export path as a search result: a PoT-4 conv tokenizer on 8×8
ON/OFF event frames, a uniform-2 linear layer over its 64 tokens, a PoT-4 linear layer fed by
a multi-bit residual path with ternary neurons and a ternary membrane, and an fp32 head that
the generator skips.
"""

import json
from pathlib import Path

import torch

from spikehq.search import quantize

HERE = Path(__file__).parent
LAYERS = [
    dict(name="tokenizer", kind="conv2d", in_channels=2, out_channels=8, kernel_size=3, padding=1,
         height=8, width=8, scheme="pot", bits=4, activation_bits=1, lanes=4, group="tokenizer",
         neuron=dict(type="lif", threshold=12, leak_shift=1, reset="hard"), membrane="integer"),
    dict(name="proj", kind="linear", in_features=8, out_features=16, tokens=64, scheme="uniform", bits=2,
         activation_bits=1, group="attention",
         neuron=dict(type="lif", threshold=3, leak_shift=1, reset="soft"), membrane="integer"),
    dict(name="mlp_residual", kind="linear", in_features=16, out_features=16, tokens=64, scheme="pot", bits=4,
         activation_bits=3, group="mlp",
         neuron=dict(type="ternary", threshold=40, leak_shift=1, reset="hard"), membrane="ternary"),
    dict(name="head", kind="linear", in_features=16, out_features=10, scheme="fp32", group="head",
         neuron=dict(type="lif", threshold=1)),
]


def main() -> None:
    torch.manual_seed(0)
    (HERE / "weights").mkdir(exist_ok=True)
    for layer in LAYERS:
        if layer["scheme"] == "fp32":
            continue
        out_ch = layer.get("out_channels", layer.get("out_features"))
        in_ch = layer.get("in_channels", layer.get("in_features"))
        k = layer.get("kernel_size", 1)
        w = torch.randn(out_ch, in_ch, k, k) if layer["kind"] == "conv2d" else torch.randn(out_ch, in_ch)
        scale = quantize.init_scale(w, layer["scheme"], layer["bits"])
        codes = quantize.to_codes(w, layer["scheme"], layer["bits"], scale)
        bias = torch.randint(-2, 3, (out_ch,))
        path = Path("weights") / f"{layer['name']}.json"
        (HERE / path).write_text(json.dumps({
            "format": "spikehq-weights", "version": 1, "layer": layer["name"],
            "codes": codes.tolist(), "bias": bias.tolist(),
            "threshold": [layer["neuron"]["threshold"]] * out_ch}) + "\n")
        layer["weights"] = str(path)
        layer["weight_scale"] = scale
    config = {"format": "spikehq-searched", "version": 1, "name": "example_tiny", "time_steps": 4,
              "description": "Small hand-made example: one layer of each hardware flavour.",
              "layers": LAYERS}
    (HERE / "example_tiny.json").write_text(json.dumps(config, indent=2) + "\n")


if __name__ == "__main__":
    main()
