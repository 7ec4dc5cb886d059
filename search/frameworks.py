"""Small snnTorch and Norse networks on the digits event data, exported with each framework's
own NIR export: the models of the NIR tutorial (docs/nir.md) and of the import tests.

``python -m spikehq.search.frameworks snntorch --out build/nir/snntorch.nir`` trains the
network for a few seconds and writes the NIR file; ``import-nir`` then needs the options it
prints (time steps, ``dt``, scheme).

* snnTorch: conv 3×3 (2→4, padding 1) → Leaky → AvgPool2d 2 → Flatten → Linear 64→10 →
  Leaky; β = 1/2, reset to zero in the same step (``reset_mechanism="zero"``,
  ``reset_delay=False``: NIR's reset), per-neuron β and threshold tensors (NIR's types need
  them shaped like the layer). snnTorch exports with dt = 1e-4.
* Norse: flattened frames → Linear 128→32 → LIFBoxCell → Linear 32→10 → LIFBoxCell, dt = 1,
  τ_mem⁻¹ = 1/2 (Norse's export writes τ = dt/τ_mem⁻¹, the time constant in steps when dt = 1).
  Norse's export maps no Flatten, so the model takes the frames flattened.

The class is the output layer's spike count summed over the T steps (argmax), the readout of
the hardware (docs/arithmetic.md §14).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..golden.codes import decode
from ..golden.config import NetworkConfig
from .data import load_dataset

__all__ = ["FRAMEWORKS", "Framework", "train", "quantized_copy", "main", "TIME_STEPS"]

TIME_STEPS = 4


def _snntorch_model():
    import snntorch as snn

    def leaky(shape, **kw):
        return snn.Leaky(beta=torch.full(shape, 0.5), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero", reset_delay=False, **kw)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), leaky((4, 8, 8)), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(64, 10), leaky((10,), output=True))


def _snntorch_counts(model, frames: torch.Tensor) -> torch.Tensor:
    import snntorch as snn
    for module in model.modules():      # membranes from 0 (snntorch.utils.reset misses deep copies)
        if isinstance(module, snn.Leaky):
            module.mem = torch.zeros(0)     # a shape mismatch: the next step starts from zeros
    return sum(model(frames[:, t])[0] for t in range(frames.shape[1]))


def _snntorch_export(model, path: Path) -> None:
    import nir
    from snntorch.export_nir import export_to_nir
    nir.write(path, export_to_nir(model, torch.zeros(1, 2, 8, 8), ignore_dims=[0]))


def _norse_model():
    import norse.torch as norse

    def cell(n):
        p = norse.LIFBoxParameters(tau_mem_inv=torch.full((n,), 0.5), v_th=torch.ones(n), v_leak=torch.zeros(n))
        return norse.LIFBoxCell(p, dt=1.0)
    return norse.SequentialState(nn.Linear(128, 32), cell(32), nn.Linear(32, 10), cell(10))


def _norse_counts(model, frames: torch.Tensor) -> torch.Tensor:
    state, total = None, 0
    for t in range(frames.shape[1]):
        out, state = model(frames[:, t].flatten(1), state)
        total = total + out
    return total


def _norse_export(model, path: Path) -> None:
    import nir
    from norse.torch.utils.export_nir import to_nir
    nir.write(path, to_nir(model, torch.zeros(1, 128), dt=1.0))


class Framework:
    """One framework's model: ``make()``, ``counts(model, frames [B, T, 2, 8, 8])`` → spike
    counts [B, 10], ``export(model, path)``, and the import-nir options that match it."""

    def __init__(self, make, counts, export, import_args: list[str]):
        self.make, self.counts, self.export, self.import_args = make, counts, export, import_args


FRAMEWORKS = {
    # PoT-4 weights for snnTorch: thresholds of ~64 weight LSBs, so the leak's rounding toward −∞
    # rarely flips a spike (docs/nir.md "Agreement"); Norse: uniform-4, its output layer PoT-4
    "snntorch": Framework(_snntorch_model, _snntorch_counts, _snntorch_export,
                          ["--time-steps", str(TIME_STEPS), "--dt", "1e-4", "--scheme", "pot-4"]),
    "norse": Framework(_norse_model, _norse_counts, _norse_export,
                       ["--time-steps", str(TIME_STEPS), "--dt", "1", "--scheme", "uniform-4", "--layer-scheme", "2=pot-4"]),
}


def train(framework: Framework, model, frames: torch.Tensor, labels: torch.Tensor, *, epochs: int = 3,
          seed: int = 0) -> float:
    """Cross-entropy on the spike counts (the frameworks' surrogate gradients), Adam, batch 64;
    returns the seconds it took."""
    torch.manual_seed(seed)
    start = time.monotonic()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        order = torch.randperm(len(labels))
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            loss = nn.functional.cross_entropy(framework.counts(model, frames[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.monotonic() - start


def quantized_copy(model, config: NetworkConfig):
    """The framework model with every imported layer's weights replaced by what the hardware
    stores, ``s_w·v`` (``weight_scale`` times the decoded codes): the quantized float model."""
    twin = copy.deepcopy(model)
    modules = dict(twin.named_modules())
    for layer in config.layers:
        synapse = config.metadata["nir"]["layers"][layer.name]["synapse"]
        codes = np.asarray(json.loads(layer.weights_path.read_text())["codes"])
        weight = torch.from_numpy(decode(layer.scheme, layer.bits, codes) * layer.weight_scale).float()
        module = modules[synapse] if synapse in modules else modules[synapse.replace("_", ".")]
        module.weight.data = weight.reshape(module.weight.shape)
    return twin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikehq.search.frameworks",
        description="Train a small snnTorch or Norse network on the digits event data for a few seconds "
                    "and write it with the framework's own NIR export (the model of docs/nir.md).")
    parser.add_argument("framework", choices=sorted(FRAMEWORKS))
    parser.add_argument("--out", required=True, help="the NIR file to write (atomically)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    framework = FRAMEWORKS[args.framework]
    train_set, test_set = load_dataset("digits", time_steps=TIME_STEPS)
    torch.manual_seed(args.seed)
    model = framework.make()
    seconds = train(framework, model, train_set.frames.float(), train_set.labels, epochs=args.epochs, seed=args.seed)
    with torch.no_grad():
        accuracy = (framework.counts(model, test_set.frames.float()).argmax(1) == test_set.labels).float().mean()
    with atomic_path(args.out) as tmp:
        framework.export(model, tmp)
    print(f"{args.framework}: trained {args.epochs} epochs in {seconds:.1f} s, digits test accuracy "
          f"{accuracy:.1%}; wrote {args.out}\nimport it with: spikehq import-nir {args.out} --out DIR "
          + " ".join(framework.import_args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
