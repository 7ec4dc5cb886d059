"""Lanes (parallel synapses) per layer: a generation parameter that trades area for speed.

Policies (``make gen LANES=...`` / ``spikehq-gen --lanes ...``):

* ``balanced`` (default, ``balanced:16`` for another ceiling): layers whose JSON gives no
  ``lanes`` get lanes in proportion to their dense work ``H'·W'·C_out·C_in·k²``. A PE spends
  ``k²·C_out/L`` cycles per input event, so at equal input density every stage of the chain
  then takes about as long per step as the heaviest one with the ceiling (8 by default), and
  lighter layers do not spend area on speed the pipeline cannot use. Each layer gets the
  smallest divisor of ``C_out`` at least ``ceiling·work/max_work``.
* ``config``: the config's lanes (its default is the largest divisor of C_out up to 8).
* ``NAME=L[,NAME=L…]``: explicit lanes for the named layers, the rest balanced.
"""

from __future__ import annotations

import dataclasses

from ..golden.config import ConfigError, LayerConfig, NetworkConfig

__all__ = ["apply_lanes", "balanced_lanes", "DEFAULT_CEILING"]

DEFAULT_CEILING = 8


def _work(layer: LayerConfig) -> int:
    return layer.out_height * layer.out_width * layer.out_channels * layer.fan_in


def balanced_lanes(layers: list[LayerConfig], ceiling: int = DEFAULT_CEILING) -> dict[str, int]:
    """Lanes per hardware layer for the ``balanced`` policy (explicit JSON lanes kept)."""
    hardware = [layer for layer in layers if layer.is_hardware]
    top = max((_work(layer) for layer in hardware), default=1)
    out = {}
    for layer in hardware:
        if layer.lanes_explicit:
            out[layer.name] = layer.lanes
            continue
        need = ceiling * _work(layer) / top
        divisors = [d for d in range(1, layer.out_channels + 1) if layer.out_channels % d == 0]
        out[layer.name] = next((d for d in divisors if d >= need), layer.out_channels)
    return out


def apply_lanes(config: NetworkConfig, policy: str = "balanced") -> NetworkConfig:
    """The config with its lanes set by ``policy`` (see the module docstring)."""
    names = {layer.name for layer in config.layers}
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
    return dataclasses.replace(config, layers=tuple(layers))
