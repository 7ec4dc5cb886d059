"""The ``balanced`` lanes policy as a pure function of the layer configs (rtl/lanes.py documents
the policy). Torch-free and RTL-free, so both the generator (``rtl/lanes.py``) and the search's
FPGA cost model (``search/fpga_cost.py``) choose the same lanes from the same config values."""

from __future__ import annotations

from .config import LayerConfig

__all__ = ["balanced_lanes", "DEFAULT_CEILING"]

DEFAULT_CEILING = 8


def _work(layer: LayerConfig, measured: bool) -> float:
    per_event = layer.kernel_size ** 2 * layer.out_channels
    return per_event * (layer.input_events if measured else layer.num_inputs)


def balanced_lanes(layers: list[LayerConfig], ceiling: int = DEFAULT_CEILING) -> dict[str, int]:
    """Lanes per hardware layer for the ``balanced`` policy (explicit JSON lanes kept); work
    from the layers' measured ``input_events`` when all have one, else from every input."""
    hardware = [layer for layer in layers if layer.is_hardware]
    measured = bool(hardware) and all(layer.input_events is not None for layer in hardware)
    top = max((_work(layer, measured) for layer in hardware), default=1) or 1
    out = {}
    for layer in hardware:
        if layer.lanes_explicit:
            out[layer.name] = layer.lanes
            continue
        need = ceiling * _work(layer, measured) / top
        divisors = [d for d in range(1, layer.out_channels + 1) if layer.out_channels % d == 0]
        out[layer.name] = next((d for d in divisors if d >= need), layer.out_channels)
    return out
