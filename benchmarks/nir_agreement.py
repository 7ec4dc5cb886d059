"""Golden integer network vs the framework's quantized float model (docs/nir.md, "Agreement").

``.venv/bin/python benchmarks/nir_agreement.py`` (or ``make bench-nir``) trains the snnTorch and
the Norse network of search/frameworks.py (3 epochs, seed 0), exports each with its framework's
NIR export, imports it under several weight schemes and prints, per case, on the 360 digits
test samples: the class agreement between the golden integer network and the framework model
carrying the imported weights, the share of samples with identical spike counts, and both
accuracies. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from spikehq.golden.network import load_network
from spikehq.nirio.cli import main as import_nir
from spikehq.search.data import load_dataset
from spikehq.search.frameworks import FRAMEWORKS, TIME_STEPS, quantized_copy, train

SCHEMES = {"snntorch": [["--scheme", "pot-4"], ["--scheme", "uniform-4"]],
           "norse": [["--scheme", "uniform-4", "--layer-scheme", "2=pot-4"], ["--scheme", "uniform-4"],
                     ["--scheme", "pot-4"]]}
OPTIONS = {"snntorch": ["--time-steps", str(TIME_STEPS), "--dt", "1e-4"], "norse": ["--time-steps", str(TIME_STEPS), "--dt", "1"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    train_set, test_set = load_dataset("digits", time_steps=TIME_STEPS)
    frames = test_set.frames.float()
    rows = ["| network | schemes | class agreement | identical spike counts | golden accuracy | float accuracy |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, framework in FRAMEWORKS.items():
            torch.manual_seed(0)
            model = framework.make()
            train(framework, model, train_set.frames.float(), train_set.labels, epochs=args.epochs)
            framework.export(model, Path(tmp) / f"{name}.nir")
            for k, scheme in enumerate(SCHEMES[name]):
                out = Path(tmp) / f"{name}_{k}"
                if import_nir([str(Path(tmp) / f"{name}.nir"), "--out", str(out), *OPTIONS[name], *scheme]) != 0:
                    return 1
                net = load_network(out / "searched.json")
                with torch.no_grad():
                    counts = framework.counts(quantized_copy(model, net.config), frames)
                    float_accuracy = (framework.counts(model, frames).argmax(1) == test_set.labels).float().mean()
                scores, _ = net.run(test_set.frames)
                agreement = (scores.argmax(1) == counts.argmax(1)).float().mean()
                exact = (scores == counts.round().long()).all(dim=1).float().mean()
                accuracy = (scores.argmax(1) == test_set.labels).float().mean()
                rows.append(f"| {name} | {' '.join(scheme[1::2]) if len(scheme) > 2 else scheme[1]} | {agreement:.1%} "
                            f"| {exact:.1%} | {accuracy:.1%} | {float_accuracy:.1%} |")
                print(rows[-1], file=sys.stderr)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
