"""Lanes (parallel synapses) per layer: a generation parameter that trades area for speed.

Policies (``make gen LANES=...`` / ``spikehq-gen --lanes ...``):

* ``balanced`` (default, ``balanced:16`` for another ceiling): layers whose JSON gives no
  ``lanes`` get lanes in proportion to their work. A PE spends ``k²·C_out/L`` cycles per input
  event, so a layer's work is ``E·k²·C_out`` with ``E`` its input events per sample: the
  layers' ``input_events`` when every hardware layer has one (the search's export measures
  them with the golden integer network on training samples), otherwise every input is
  assumed equally likely to fire, ``E ∝ H·W·C_in``. Each layer gets the smallest divisor of
  ``C_out`` at least ``ceiling·work/max_work``, so every stage of the chain takes about as long
  per step as the heaviest one with the ceiling (8 by default), and lighter layers do not
  spend area on speed the pipeline cannot use.
* ``config``: the config's lanes (its default is the largest divisor of C_out up to 8).
* ``NAME=L[,NAME=L…]``: explicit lanes for the named layers (``attention`` names the
  Spikformer attention units), the rest balanced.

The attention units of a Spikformer top are balanced the same way unless the JSON gives
``metadata.network.attention.lanes``: a unit spends ``d/L`` cycles per q and per k event
(``d`` = channels per head), so its work is ``d·(E_q + E_k)``, with both estimated by the
block's q-layer input events; under ``config`` they keep the unit's default (the largest
divisor of ``d`` up to 8).

Every policy is a pure function of the config: nothing is simulated, trained or loaded.
"""

from __future__ import annotations

import dataclasses

from ..golden.config import ConfigError, NetworkConfig
from ..golden.lanes import DEFAULT_CEILING, balanced_attention_lanes, balanced_lanes

__all__ = ["apply_lanes", "balanced_lanes", "DEFAULT_CEILING"]


def apply_lanes(config: NetworkConfig, policy: str = "balanced") -> NetworkConfig:
    """The config with its lanes set by ``policy`` (see the module docstring)."""
    graph = config.graph
    attention = graph.attention if graph is not None and graph.architecture == "spikformer" else None
    names = {layer.name for layer in config.layers} | ({"attention"} if attention else set())
    if policy == "config":
        return config
    explicit: dict[str, int] = {}
    ceiling = DEFAULT_CEILING
    if policy.startswith("balanced"):
        _, _, rest = policy.partition(":")
        if rest:
            if not rest.isdigit() or int(rest) < 1:
                raise ConfigError(f"--lanes: expected balanced:<positive integer>, got {policy!r}")
            ceiling = int(rest)
    else:
        for item in policy.split(","):
            name, sep, value = item.partition("=")
            if not sep or not value.isdigit() or int(value) < 1:
                raise ConfigError(f"--lanes: expected balanced[:N], config or NAME=L[,NAME=L...], got {item!r}")
            if name not in names:
                raise ConfigError(f"--lanes: no layer named {name!r} (layers: {', '.join(sorted(names))})")
            explicit[name] = int(value)
    plan = balanced_lanes(list(config.layers), ceiling)
    plan.update(explicit)
    layers = []
    for layer in config.layers:
        lanes = plan.get(layer.name, layer.lanes)
        if layer.out_channels % lanes:
            raise ConfigError(f"--lanes: {layer.name}={lanes} must divide its {layer.out_channels} output channels")
        layers.append(dataclasses.replace(layer, lanes=lanes))
    config = dataclasses.replace(config, layers=tuple(layers))
    if attention is None:
        return config
    lanes = explicit.get("attention", attention.lanes)
    if lanes is None:
        lanes = balanced_attention_lanes(list(config.layers), depth=graph.depth, heads=attention.heads,
                                         ceiling=ceiling)
    head_dim = config.layer("b0_q").out_channels // attention.heads
    if head_dim % lanes:
        raise ConfigError(f"--lanes: attention={lanes} must divide the head dimension {head_dim}")
    graph = dataclasses.replace(graph, attention=dataclasses.replace(attention, lanes=lanes))
    return dataclasses.replace(config, graph=graph)
