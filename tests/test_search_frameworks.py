"""Bring your own network: a small snnTorch network and a small Norse network
(search/frameworks.py), trained for a few seconds on the digits event data, exported by the
framework's own NIR export, imported by ``spikehq import-nir`` with the options the tutorial
uses; then

* the golden integer network agrees with the framework's model carrying the imported
  (quantized) weights on the 360 digits test samples: the rate is printed, a bound asserted;
* the generated network top is bit-exact against the golden network on Verilator.
"""

from __future__ import annotations

import pytest
import torch

from spikehq.golden.network import load_network
from spikehq.nirio.cli import main as import_nir_cli
from spikehq.search.data import load_dataset
from spikehq.search.frameworks import FRAMEWORKS, TIME_STEPS, quantized_copy, train

EPOCHS = 3
VERILATOR_SAMPLES = [0, 1, 2]
# the integer model differs from the float one only by rounding (bias, threshold, the leak's
# floor; docs/nir.md): most test samples must get the same class
MIN_AGREEMENT = 0.85


@pytest.fixture(scope="module", params=sorted(FRAMEWORKS))
def imported(request, tmp_path_factory):
    """Train, export, import one framework's network."""
    framework = FRAMEWORKS[request.param]
    train_set, test_set = load_dataset("digits", time_steps=TIME_STEPS)
    torch.manual_seed(0)
    model = framework.make()
    seconds = train(framework, model, train_set.frames.float(), train_set.labels, epochs=EPOCHS)
    folder = tmp_path_factory.mktemp(request.param)
    framework.export(model, folder / "model.nir")
    assert import_nir_cli([str(folder / "model.nir"), "--out", str(folder / "imported"), "--name", request.param,
                           *framework.import_args]) == 0
    path = folder / "imported" / "searched.json"
    print(f"\n{request.param}: trained {EPOCHS} epochs in {seconds:.1f} s; layers "
          + ", ".join(f"{l.name} {l.kind} {l.scheme}-{l.bits} leak_shift {l.neuron.leak_shift}"
                      for l in load_network(path).config.layers))
    return request.param, path, framework, model, test_set


def test_golden_agrees_with_the_framework_quantized_model(imported):
    name, path, framework, model, test_set = imported
    net = load_network(path)
    frames = test_set.frames.float()
    with torch.no_grad():
        float_counts = framework.counts(quantized_copy(model, net.config), frames)
        float_accuracy = (framework.counts(model, frames).argmax(1) == test_set.labels).float().mean().item()
    scores, _ = net.run(test_set.frames)
    golden = scores.argmax(1)
    agreement = (golden == float_counts.argmax(1)).float().mean().item()
    exact = (scores == float_counts.round().long()).all(dim=1).float().mean().item()
    accuracy = (golden == test_set.labels).float().mean().item()
    print(f"{name}: golden vs {name} quantized float model on {len(golden)} digits test samples: "
          f"class agreement {agreement:.1%}, identical spike counts {exact:.1%}; accuracy golden {accuracy:.1%}, "
          f"{name} float {float_accuracy:.1%}")
    assert accuracy > 0.5, f"{name}: the trained network did not learn (golden accuracy {accuracy:.1%})"
    assert agreement >= MIN_AGREEMENT, f"{name}: class agreement {agreement:.1%} < {MIN_AGREEMENT:.0%}"


@pytest.mark.verilator
def test_generated_top_is_bit_exact_on_verilator(imported, stall_seed):
    from spikehq.sim.runner import run_network
    name, path, *_ = imported
    seed = stall_seed
    print(f"{name}: {len(VERILATOR_SAMPLES)} samples on Verilator, stall seed {seed}")
    tests, failures = run_network(path, VERILATOR_SAMPLES, stall_seed=seed)
    assert (tests, failures) == (1, 0), f"{name}: stall seed {seed}"
