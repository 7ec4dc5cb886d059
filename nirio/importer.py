"""NIR graph → ``searched.json`` + integer weights (``spikehq import-nir``; docs/nir.md).

A NIR graph (the Neuromorphic Intermediate Representation, ``nir`` on PyPI) is a set of nodes
and edges; several edges into one node are summed. The importer maps it onto the feed-forward
graph of docs/arithmetic.md §14:

* a synapse (``Conv2d``, ``Linear``, ``Affine``) and the one neuron node it feeds (``LIF``,
  ``IF``, ``CubaLIF`` with ``tau_syn = dt``) become one hardware layer (conv2d or linear);
* ``SumPool2d`` and ``AvgPool2d`` (kernel = stride, no padding) become sum pooling (the 1/k² of
  average pooling is folded into the next layer's integer scale), ``Flatten`` becomes flatten,
  several edges into one node become residual adds, ``Input`` the event frame and ``Output``
  (fed by a layer) the spike-count readout.

Neuron parameters fold into integers as §8: per layer the weight scale ``s_w`` (from the
scheme's quantizer), per channel the input gain ``γ`` (``r·dt/τ``), so the integer membrane is
``v / g`` with ``g = γ·s_w·s_x``; leak ``β = 1 − dt/τ`` must be ``2^−s``; NIR's ``v > v_th``
becomes ``u ≥ floor(v_th/g) + 1``; NIR's reset to ``v_reset = 0`` is the hard reset. Anything
the hardware cannot express raises :class:`NirImportError` naming the node and the field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_directory
from ..golden.codes import encode, pot_max_exponent
from ..golden.config import ConfigError, NetworkConfig, load_config

__all__ = ["NirImportError", "ImportOptions", "import_nir", "quantize", "parse_scheme", "SUPPORTED", "SYNAPSES",
           "NEURONS"]

SYNAPSES = ("Conv2d", "Linear", "Affine")
NEURONS = ("LIF", "IF", "CubaLIF")
SUPPORTED = ("Input", "Output", *SYNAPSES, *NEURONS, "SumPool2d", "AvgPool2d", "Flatten")
LEAK_TOLERANCE = 1e-6


class NirImportError(ValueError):
    """The NIR graph has something the hardware cannot express; one line naming node and field."""


@dataclass(frozen=True)
class ImportOptions:
    """How to import: ``time_steps`` per sample, the graph's ``dt``, the default scheme
    (``uniform-4``) and per-layer schemes (by NIR synapse name or layer name), and whether a
    leak that is not a power of two is rounded to the nearest one instead of refused."""

    time_steps: int = 4
    dt: float = 1e-4
    scheme: str = "uniform-4"
    layer_schemes: dict[str, str] = field(default_factory=dict)
    round_leak: bool = False
    name: str = "nir"


def parse_scheme(text: str, where: str = "scheme") -> tuple[str, int]:
    """``uniform-4`` → ("uniform", 4); schemes: uniform or pot, 2 or 4 bits."""
    match = re.fullmatch(r"(uniform|pot)-(2|4)", text)
    if not match:
        raise NirImportError(f"{where}: expected uniform-2, uniform-4, pot-2 or pot-4, got {text!r}")
    return match.group(1), int(match.group(2))


def quantize(w: np.ndarray, scheme: str, bits: int) -> tuple[np.ndarray, float]:
    """Float weights → (code words, scale s_w) of docs/arithmetic.md §1 (per-layer scale).

    Uniform: ``s_w = max|w| / (2^(b−1) − 1)``, round half to even. PoT: the largest level
    ``α = s_w·2^E`` is the power of two nearest to ``max|w|`` (in log2)."""
    w = np.asarray(w, dtype=np.float64)
    top = float(np.abs(w).max(initial=0.0)) or 1.0
    if scheme == "uniform":
        scale = top / (2 ** (bits - 1) - 1)
        values = np.clip(np.round(w / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1).astype(np.int64)
        return encode("uniform", bits, values), scale
    E = pot_max_exponent(bits)
    scale = 2.0 ** (round(math.log2(top)) - E)
    with np.errstate(divide="ignore"):
        e = np.round(np.log2(np.abs(w) / scale))
    magnitude = np.where((w == 0) | (e < 0), 0, 2 ** np.clip(np.nan_to_num(e, neginf=-1), 0, E)).astype(np.int64)
    return encode("pot", bits, np.sign(w).astype(np.int64) * magnitude), scale


def _identifier(name: str, taken: set[str]) -> str:
    """A schema-legal, unused name for a NIR node name (``net.0`` → ``net_0``, ``0`` → ``n0``)."""
    base = re.sub(r"\W", "_", name) or "n"
    base = base if re.match(r"[A-Za-z_]", base) else f"n{base}"
    if base == "input":
        base = "input_"
    out, i = base, 1
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


def _array(node, field_name: str) -> np.ndarray:
    return np.asarray(getattr(node, field_name), dtype=np.float64)


@dataclass
class _Value:
    """A value of the graph: spikehq node name, (C, H, W), integer range, real scale per unit."""
    name: str
    shape: tuple[int, int, int]
    lo: int
    hi: int
    scale: float


class _Importer:
    def __init__(self, graph, options: ImportOptions):
        self.graph, self.opt = graph, options
        self.preds = {n: [] for n in graph.nodes}
        self.succs = {n: [] for n in graph.nodes}
        for src, dst in graph.edges:
            for end in (src, dst):
                if end not in graph.nodes:
                    raise NirImportError(f"edge ({src!r}, {dst!r}): node {end!r} is not in the graph")
            self.preds[dst].append(src)
            self.succs[src].append(dst)
        self.values: dict[str, _Value] = {}
        self.nodes, self.layers, self.weights, self.sources = [], [], {}, {}
        self.taken: set[str] = set()
        self.output: str | None = None
        self.input_shape: tuple[int, int, int] | None = None

    def kind(self, name: str) -> str:
        return type(self.graph.nodes[name]).__name__

    def order(self) -> list[str]:
        """Kahn's topological order, ties by name (deterministic); a cycle is refused."""
        indegree = {n: len(p) for n, p in self.preds.items()}
        ready = sorted(n for n, d in indegree.items() if d == 0)
        out = []
        while ready:
            n = ready.pop(0)
            out.append(n)
            for s in self.succs[n]:
                indegree[s] -= 1
                if indegree[s] == 0:
                    ready = sorted(ready + [s])
        if len(out) != len(indegree):
            cyclic = sorted(n for n, d in indegree.items() if d > 0)
            raise NirImportError(f"node {cyclic[0]!r}: part of a recurrent cycle; the hardware is feed-forward")
        return out

    def run(self) -> None:
        order = self.order()
        for name in order:
            if self.kind(name) not in SUPPORTED:
                raise NirImportError(f"node {name!r}: NIR type {self.kind(name)} has no hardware "
                                     f"(supported: {', '.join(SUPPORTED)})")
        for name in order:
            getattr(self, f"_{self.kind(name).lower()}")(name, self.graph.nodes[name])
        if self.input_shape is None:
            raise NirImportError("graph: no Input node")
        if self.output is None:
            raise NirImportError("graph: no Output node fed by a neuron layer")

    # ---- values ----------------------------------------------------------------------------
    def inputs(self, name: str) -> _Value:
        """The summed input of node ``name``: one value, or an add node per extra edge."""
        preds = self.preds[name]
        if not preds:
            raise NirImportError(f"node {name!r}: has no input edge")
        for p in preds:
            if p not in self.values:
                raise NirImportError(f"node {name!r}: input {p!r} ({self.kind(p)}) is not a spike or pooled "
                                     "value (a synapse must feed a neuron directly)")
        value = self.values[preds[0]]
        for p in preds[1:]:
            other = self.values[p]
            if other.shape != value.shape:
                raise NirImportError(f"node {name!r}: inputs {preds[0]!r} and {p!r} have shapes "
                                     f"{list(value.shape)} and {list(other.shape)}; an add needs equal shapes")
            if not math.isclose(other.scale, value.scale, rel_tol=1e-9):
                raise NirImportError(f"node {name!r}: inputs {preds[0]!r} and {p!r} have different scales "
                                     f"({value.scale:g}, {other.scale:g}); an integer add needs equal ones")
            add = _identifier(f"{name}_add", self.taken)
            self.nodes.append({"name": add, "op": "add", "inputs": [value.name, other.name], "nir": name})
            value = _Value(add, value.shape, value.lo + other.lo, value.hi + other.hi, value.scale)
        return value

    def _input(self, name, node):
        shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
        if len(shape) in (2, 4) and shape[0] == 1:          # a batch dimension of 1 (Norse's export)
            shape = shape[1:]
        if len(shape) == 1:
            shape = (shape[0], 1, 1)
        if len(shape) != 3:
            raise NirImportError(f"node {name!r}.input_type: expected [channels, height, width] or [features] "
                                 "(after an optional batch dimension of 1), "
                                 f"got {list(shape)}")
        if self.values:
            raise NirImportError(f"node {name!r}: a second Input node; the hardware takes one event stream")
        self.values[name] = _Value("input", shape, 0, 1, 1.0)
        self.input_shape = shape

    def _output(self, name, node):
        preds = self.preds[name]
        if len(preds) != 1 or self.values.get(preds[0]) is None or preds[0] not in self.sources:
            raise NirImportError(f"node {name!r}: the Output must be fed by exactly one neuron layer "
                                 "(its spikes are counted per class)")
        if self.output is not None:
            raise NirImportError(f"node {name!r}: a second Output node; the hardware has one result stream")
        self.output = self.values[preds[0]].name

    def _flatten(self, name, node):
        value = self.inputs(name)
        if node.start_dim not in (0, 1) or node.end_dim != -1:
            raise NirImportError(f"node {name!r}.start_dim: only a full flatten of [channels, height, width] "
                                 f"maps (start_dim 0 or 1, end_dim -1), got {node.start_dim}, {node.end_dim}")
        c, h, w = value.shape
        if (h, w) == (1, 1):
            self.values[name] = value
            return
        out = _identifier(name, self.taken)
        self.nodes.append({"name": out, "op": "flatten", "inputs": [value.name], "nir": name})
        self.values[name] = _Value(out, (c * h * w, 1, 1), value.lo, value.hi, value.scale)

    def _pool(self, name, node, average: bool):
        value = self.inputs(name)
        k, s, p = (np.asarray(getattr(node, f), dtype=np.int64).reshape(-1) for f in ("kernel_size", "stride", "padding"))
        k, s = np.broadcast_to(k, (2,)), np.broadcast_to(s, (2,))
        if k[0] != k[1]:
            raise NirImportError(f"node {name!r}.kernel_size: only square kernels map, got {k.tolist()}")
        if (s != k).any():
            raise NirImportError(f"node {name!r}.stride: must equal the kernel size {int(k[0])}, got {s.tolist()}")
        if (p != 0).any():
            raise NirImportError(f"node {name!r}.padding: must be 0, got {p.tolist()}")
        k = int(k[0])
        c, h, w = value.shape
        if k < 2 or k > 8 or h % k or w % k:
            raise NirImportError(f"node {name!r}.kernel_size: must be 2…8 and divide the {h}×{w} input, got {k}")
        out = _identifier(name, self.taken)
        self.nodes.append({"name": out, "op": "sumpool", "inputs": [value.name], "kernel": k, "nir": name})
        scale = value.scale / (k * k) if average else value.scale
        self.values[name] = _Value(out, (c, h // k, w // k), value.lo * k * k, value.hi * k * k, scale)

    def _sumpool2d(self, name, node):
        self._pool(name, node, average=False)

    def _avgpool2d(self, name, node):
        self._pool(name, node, average=True)

    def _synapse(self, name, node):
        succs = self.succs[name]
        if len(succs) != 1 or self.kind(succs[0]) not in NEURONS or len(self.preds[succs[0]]) != 1:
            raise NirImportError(f"node {name!r}: a {self.kind(name)} must feed exactly one neuron node "
                                 f"({', '.join(NEURONS)}) that has no other input; a hardware layer is a "
                                 "synapse and its neurons")

    _conv2d = _linear = _affine = _synapse

    def _lif(self, name, node):
        self._layer(name, node)

    _if = _cubalif = _lif

    def _layer(self, neuron_name: str, neuron) -> None:
        syn_name = self.preds[neuron_name][0] if len(self.preds[neuron_name]) == 1 else None
        if syn_name is None or self.kind(syn_name) not in SYNAPSES:
            raise NirImportError(f"node {neuron_name!r}: a neuron must be fed by exactly one Conv2d, Linear or "
                                 "Affine node")
        value = self.inputs(syn_name)
        layer_name = _identifier(syn_name, self.taken)
        raw, w, bias, O = self._geometry(layer_name, syn_name, self.graph.nodes[syn_name], value)
        scheme, bits = parse_scheme(self.opt.layer_schemes.get(syn_name, self.opt.layer_schemes.get(
            layer_name, self.opt.scheme)), f"scheme of layer {layer_name!r}")
        codes, s_w = quantize(w, scheme, bits)
        positions = (raw.get("out_height", 1), raw.get("out_width", 1))
        leak_shift, gain, leak_bias, v_th = _neuron(neuron_name, neuron, O, positions, self.opt)
        g = gain * s_w * value.scale
        int_bias = np.round((gain * bias + leak_bias) / g).astype(np.int64)
        threshold = (np.floor(v_th / g) + 1).astype(np.int64)
        if (threshold < 1).any():
            raise NirImportError(f"node {neuron_name!r}.v_threshold: must be positive after folding, got "
                                 f"{float(v_th[threshold < 1][0]):g}")
        if (threshold >= 2 ** 20).any() or (np.abs(int_bias) >= 2 ** 30).any():
            which = "v_threshold" if (threshold >= 2 ** 20).any() else "bias"
            raise NirImportError(f"node {neuron_name!r}.{which}: too large for the hardware after folding into "
                                 f"integers (threshold < 2^20, |bias| < 2^30); the weights are tiny against it")
        a = _activation_bits(value, syn_name)
        raw.pop("out_height", None), raw.pop("out_width", None)
        raw.update(scheme=scheme, bits=bits, activation_bits=a, weight_scale=s_w,
                   neuron={"type": "lif", "threshold": int(threshold.max()), "leak_shift": leak_shift,
                           "reset": "hard"},
                   membrane="integer", weights=f"weights/{layer_name}.json")
        self.layers.append(raw)
        self.weights[layer_name] = {"format": "spikehq-weights", "version": 1, "layer": layer_name,
                                    "codes": codes.tolist(), "bias": int_bias.tolist(), "threshold": threshold.tolist()}
        self.nodes.append({"name": layer_name, "op": "layer", "inputs": [value.name], "nir": f"{syn_name}+{neuron_name}"})
        self.sources[neuron_name] = (syn_name, layer_name)
        oh, ow = positions
        self.values[neuron_name] = _Value(layer_name, (O, oh, ow), 0, 1, 1.0)

    def _geometry(self, layer_name, name, node, value: _Value):
        """The layer's JSON geometry, float weights [O, C(, k, k)], bias [O], out channels."""
        w = _array(node, "weight")
        c, h, wd = value.shape
        if self.kind(name) == "Conv2d":
            if w.ndim != 4 or w.shape[2] != w.shape[3]:
                raise NirImportError(f"node {name!r}.weight: expected [out, in, k, k] (square kernel), got {list(w.shape)}")
            O, C, k = w.shape[0], w.shape[1], w.shape[2]
            for f in ("stride", "dilation"):
                if (np.asarray(getattr(node, f)).reshape(-1) != 1).any():
                    raise NirImportError(f"node {name!r}.{f}: must be 1, got {np.asarray(getattr(node, f)).tolist()}")
            if node.groups != 1:
                raise NirImportError(f"node {name!r}.groups: must be 1, got {node.groups}")
            pad = node.padding
            if isinstance(pad, str):
                if pad == "same" and k % 2 == 0:
                    raise NirImportError(f"node {name!r}.padding: 'same' needs an odd kernel, got {k}")
                p = (k - 1) // 2 if pad == "same" else 0 if pad == "valid" else -1
            else:
                pads = np.asarray(pad).reshape(-1)
                p = int(pads[0]) if (pads == pads[0]).all() else -1
            if not 0 <= p <= k - 1:
                raise NirImportError(f"node {name!r}.padding: must be equal on both axes and at most k-1 = {k - 1}, "
                                     f"got {pad!r}")
            if C != c:
                raise NirImportError(f"node {name!r}.weight: takes {C} input channels, its input has {c}")
            raw = {"name": layer_name, "kind": "conv2d", "in_channels": C, "out_channels": O, "kernel_size": k,
                   "padding": p, "height": h, "width": wd,
                   "out_height": h + 2 * p - k + 1, "out_width": wd + 2 * p - k + 1}
        else:
            if w.ndim != 2:
                raise NirImportError(f"node {name!r}.weight: expected [out, in], got {list(w.shape)}")
            O, N = w.shape
            if (h, wd) != (1, 1) or N != c:
                raise NirImportError(f"node {name!r}.weight: takes {N} features, its input is "
                                     f"{list(value.shape)} (flatten a [channels, height, width] input first)")
            raw = {"name": layer_name, "kind": "linear", "in_features": N, "out_features": O, "tokens": 1}
        bias = _array(node, "bias").reshape(-1) if self.kind(name) != "Linear" else np.zeros(O)
        if bias.shape != (O,):
            raise NirImportError(f"node {name!r}.bias: expected {O} values, got {bias.size}")
        return raw, w, bias, O


def _channels(node_name: str, node, field_name: str, O: int, positions) -> np.ndarray:
    """A neuron parameter as one value per channel: scalar, [O], or [O, H, W] constant per channel."""
    a = _array(node, field_name)
    if a.size == 1:
        return np.full(O, float(a.reshape(-1)[0]))
    if a.size == O:
        return a.reshape(O)
    if a.size == O * positions[0] * positions[1]:
        per = a.reshape(O, -1)
        if not np.allclose(per, per[:, :1], rtol=1e-9, atol=0):
            raise NirImportError(f"node {node_name!r}.{field_name}: differs between pixels of one channel; "
                                 "the hardware has one value per channel")
        return per[:, 0]
    raise NirImportError(f"node {node_name!r}.{field_name}: expected 1, {O} or {O}×{positions[0]}×{positions[1]} "
                         f"values, got shape {list(a.shape)}")


def _neuron(name: str, node, O: int, positions, opt: ImportOptions):
    """(leak shift, gain γ [O], leak bias [O], v_th [O]) of a LIF / IF / CubaLIF node."""
    kind = type(node).__name__
    get = lambda f: _channels(name, node, f, O, positions)
    v_th = get("v_threshold")
    if (get("v_reset") != 0).any():
        raise NirImportError(f"node {name!r}.v_reset: the hardware resets to 0, got {float(get('v_reset').max()):g}")
    if kind == "IF":
        return 0, _positive(name, "r", get("r")), np.zeros(O), v_th
    tau_field = "tau" if kind == "LIF" else "tau_mem"
    step = opt.dt / get(tau_field)                           # dt/τ
    gain = get("r") * step
    if kind == "CubaLIF":
        syn = opt.dt / get("tau_syn")
        if not np.allclose(syn, 1.0, rtol=0, atol=LEAK_TOLERANCE):
            raise NirImportError(f"node {name!r}.tau_syn: a synaptic current filter has no hardware; only "
                                 f"tau_syn = dt ({opt.dt:g}) maps, got {float(get('tau_syn')[0]):g}")
        gain = gain * get("w_in")
    beta = 1.0 - step
    if not np.allclose(beta, beta[0], rtol=1e-9, atol=0):
        raise NirImportError(f"node {name!r}.{tau_field}: the leak (1 - dt/tau) must be one value per layer")
    if not 0 < beta[0] <= 1:
        raise NirImportError(f"node {name!r}.{tau_field}: the leak 1 - dt/tau must lie in (0, 1], got {beta[0]:g} "
                             f"with dt {opt.dt:g}")
    s = -math.log2(beta[0])
    if abs(s - round(s)) * math.log(2) > LEAK_TOLERANCE and not opt.round_leak:
        raise NirImportError(f"node {name!r}.{tau_field}: the leak 1 - dt/tau = {beta[0]:g} is not a power of two "
                             f"(the hardware leaks by a shift; --round-leak rounds it to {2.0 ** -round(s):g})")
    if round(s) > 16:
        raise NirImportError(f"node {name!r}.{tau_field}: the leak {beta[0]:g} needs a shift of {round(s)}, above 16")
    return int(round(s)), _positive(name, "r", gain), step * get("v_leak"), v_th


def _positive(name: str, field_name: str, gain: np.ndarray) -> np.ndarray:
    if (gain <= 0).any():
        raise NirImportError(f"node {name!r}.{field_name}: the input gain must be positive, got {float(gain.min()):g}")
    return gain


def _activation_bits(value: _Value, name: str) -> int:
    """Bits of the activations into a layer: 1 for spikes, else the two's complement width."""
    if value.lo >= 0 and value.hi <= 1:
        return 1
    bits = max(int(value.hi).bit_length(), int(-value.lo - 1).bit_length()) + 1
    if bits > 8:
        raise NirImportError(f"node {name!r}: its input carries [{value.lo}, {value.hi}], more than the 8-bit "
                             "activations the hardware takes")
    return max(bits, 2)


def read_graph(path: str | Path):
    """Read a NIR file (``nir.read``); a missing or unreadable file is one line."""
    import nir
    path = Path(path)
    if not path.is_file():
        raise NirImportError(f"{path}: file not found")
    try:
        return nir.read(path, type_check=False)     # shapes are checked here, node by node
    except Exception as e:       # h5py and nir raise many kinds; the file is what is wrong
        raise NirImportError(f"{path}: not a readable NIR file ({type(e).__name__}: {e})") from None


def import_nir(source, out_dir: str | Path, options: ImportOptions = ImportOptions()) -> NetworkConfig:
    """Import a NIR graph (a path or a ``nir.NIRGraph``) into ``out_dir`` (replaced atomically):
    ``searched.json`` and ``weights/<layer>.json``; return the loaded, validated config."""
    graph = read_graph(source) if isinstance(source, (str, Path)) else source
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", options.name):
        raise NirImportError(f"name: expected an identifier (letters, digits, _), got {options.name!r}")
    parse_scheme(options.scheme)
    imp = _Importer(graph, options)
    imp.run()
    named = {name for pair in imp.sources.values() for name in pair}
    for key in options.layer_schemes:
        if key not in named:
            raise NirImportError(f"layer scheme {key!r}: no such synapse node or layer")
    doc = {"format": "spikehq-searched", "version": 1, "name": options.name, "time_steps": options.time_steps,
           "description": f"imported from NIR ({Path(source).name if isinstance(source, (str, Path)) else 'graph'})",
           "layers": imp.layers,
           "metadata": {"network": {"architecture": "feedforward", "input": list(imp.input_shape),
                                    "nodes": imp.nodes, "output": imp.output, "readout": "spike_count"},
                        "nir": {"dt": options.dt, "round_leak": options.round_leak,
                                "layers": {layer: {"synapse": syn, "neuron": neuron}
                                           for neuron, (syn, layer) in imp.sources.items()}}}}
    with atomic_directory(out_dir) as staging:
        (staging / "weights").mkdir()
        for name, weights in imp.weights.items():
            (staging / "weights" / f"{name}.json").write_text(json.dumps(weights) + "\n")
        (staging / "searched.json").write_text(json.dumps(doc, indent=1) + "\n")
        try:
            load_config(staging / "searched.json")
        except ConfigError as e:
            raise NirImportError(f"imported graph: {e}") from None
    return load_config(Path(out_dir) / "searched.json")
