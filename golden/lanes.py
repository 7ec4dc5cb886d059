"""The ``balanced`` lanes policy as a pure function of the layer configs (rtl/lanes.py documents
the policy). Torch-free and RTL-free, so both the generator (``rtl/lanes.py``) and the search's
FPGA cost model (``search/fpga_cost.py``) choose the same lanes from the same config values."""

from __future__ import annotations

from .config import LayerConfig

__all__ = ["balanced_lanes", "balanced_attention_lanes", "DEFAULT_CEILING"]

DEFAULT_CEILING = 8


def _work(layer: LayerConfig, measured: bool) -> float:
    per_event = layer.kernel_size ** 2 * layer.out_channels
    return per_event * (layer.input_events if measured else layer.num_inputs)


def _measured(hardware: list[LayerConfig]) -> bool:
    return bool(hardware) and all(layer.input_events is not None for layer in hardware)


def _smallest_divisor(n: int, need: float) -> int:
    return next((d for d in range(1, n + 1) if n % d == 0 and d >= need), n)


def balanced_lanes(layers: list[LayerConfig], ceiling: int = DEFAULT_CEILING) -> dict[str, int]:
    """Lanes per hardware layer for the ``balanced`` policy (explicit JSON lanes kept); work
    from the layers' measured ``input_events`` when all have one, else from every input."""
    hardware = [layer for layer in layers if layer.is_hardware]
    measured = _measured(hardware)
    top = max((_work(layer, measured) for layer in hardware), default=1) or 1
    out = {}
    for layer in hardware:
        if layer.lanes_explicit:
            out[layer.name] = layer.lanes
            continue
        out[layer.name] = _smallest_divisor(layer.out_channels, ceiling * _work(layer, measured) / top)
    return out


def balanced_attention_lanes(layers: list[LayerConfig], *, depth: int, heads: int,
                             ceiling: int = DEFAULT_CEILING) -> int:
    """Lanes of the Spikformer attention units under the ``balanced`` policy: a unit spends
    ``d/L`` cycles per q and per k event (``d = channels/heads``), so its work is
    ``d·(E_q + E_k)``, both estimated by the block's q-layer input events (the q, k, v PEs
    read the same input; rtl/attention.py); the busiest block decides, as for a PE."""
    hardware = [layer for layer in layers if layer.is_hardware]
    measured = _measured(hardware)
    top = max((_work(layer, measured) for layer in hardware), default=1) or 1
    by_name = {layer.name: layer for layer in hardware}
    head_dim = by_name["b0_q"].out_channels // heads
    need = 0.0
    for b in range(depth):
        q = by_name[f"b{b}_q"]
        events = q.input_events if measured else q.num_inputs
        need = max(need, ceiling * head_dim * 2 * events / top)
    return _smallest_divisor(head_dim, need)
