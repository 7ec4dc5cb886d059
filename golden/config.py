"""The one validated configuration object: ``searched.json`` → :class:`NetworkConfig`.

Torch-free on purpose: the RTL generator imports it without PyTorch. Parameters flow one way,
JSON → these dataclasses → keyword arguments of the Amaranth components. Every width the RTL and
the golden model use is derived here (see ``docs/arithmetic.md`` §5), once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import jsonschema
import numpy as np

from .codes import SCHEMES, activation_max_abs, activation_range, check_codes, weight_max_abs

__all__ = [
    "ConfigError", "NeuronConfig", "LayerConfig", "LayerWeights", "LayerWidths", "AttentionConfig",
    "GraphNode", "NetworkGraph", "NetworkConfig", "load_config", "config_from_dict", "load_weights", "signed_width",
    "FORMAT", "VERSION", "WEIGHTS_FORMAT", "default_lanes",
]

FORMAT = "spikehq-searched"
VERSION = 1
WEIGHTS_FORMAT = "spikehq-weights"
MAX_DEFAULT_LANES = 8
#: entries of the FIFO in front of every PE's input in a network top unless
#: ``metadata.network.stream_fifo`` says otherwise (a generation parameter, docs/synthesis.md)
DEFAULT_STREAM_FIFO = 64


class ConfigError(ValueError):
    """A configuration or weights file is invalid. The message is one line naming the field."""


def signed_width(bound: int) -> int:
    """Bits of a two's complement signal that holds every integer in [-bound, bound]."""
    return max(int(bound).bit_length() + 1, 2)


@dataclass(frozen=True)
class NeuronConfig:
    """A layer's neuron (docs/arithmetic.md §4). ``relu`` is A2OS2A's stateless integer ReLU
    key with ``bits`` output bits (``None`` for the spiking types)."""

    type: Literal["lif", "ternary", "relu"]
    threshold: int
    leak_shift: int = 1
    reset: Literal["hard", "soft"] = "hard"
    bits: int | None = None

    @property
    def value_max(self) -> int:
        """Largest output value: 1 for spikes, 2^bits − 1 for a relu key."""
        return 2 ** self.bits - 1 if self.type == "relu" else 1


@dataclass(frozen=True)
class LayerWeights:
    """Integer parameters of one layer, exactly as the hardware stores them.

    ``codes`` has shape (out_channels, in_channels, k, k) and holds b-bit code words;
    ``bias`` and ``threshold`` have shape (out_channels,) and hold integers.
    """

    codes: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray


@dataclass(frozen=True)
class LayerWidths:
    """Bounds and signal widths of one layer (docs/arithmetic.md §5)."""

    weight_max_abs: int
    activation_max_abs: int
    current_bound: int      # max |sum of w·x| over one time step
    bias_bound: int         # max |bias|
    threshold_max: int
    membrane_bound: int     # max |u| before reset, any step
    current_width: int
    membrane_width: int     # width of u (integer membranes are stored at this width)
    bias_width: int
    threshold_width: int


@dataclass(frozen=True)
class LayerConfig:
    """One conv/linear layer. A linear layer is a 1×1 convolution over ``tokens``×1 pixels."""

    name: str
    kind: Literal["linear", "conv2d"]
    in_channels: int
    out_channels: int
    kernel_size: int
    padding: int
    height: int
    width: int
    scheme: Literal["fp32", "pot", "uniform"]
    bits: int
    activation_bits: int
    lanes: int
    neuron: NeuronConfig
    membrane: Literal["integer", "ternary", "binary"]
    time_steps: int
    weights_path: Path | None = None
    weight_scale: float | None = None
    group: str | None = None
    lanes_explicit: bool = False        # lanes came from the JSON (not the default)
    input_events: float | None = None   # measured mean input events per sample (lanes policy)
    spatial_prune_k: int = 0            # SpQuant spatial pruning's k (§6.1); 0 = off

    # ---- geometry -------------------------------------------------------------------------
    @property
    def out_height(self) -> int:
        return self.height + 2 * self.padding - self.kernel_size + 1

    @property
    def out_width(self) -> int:
        return self.width + 2 * self.padding - self.kernel_size + 1

    @property
    def fan_in(self) -> int:
        return self.in_channels * self.kernel_size ** 2

    @property
    def groups(self) -> int:
        """Lane groups per output pixel: out_channels / lanes."""
        return self.out_channels // self.lanes

    @property
    def num_inputs(self) -> int:
        return self.height * self.width * self.in_channels

    @property
    def num_outputs(self) -> int:
        return self.out_height * self.out_width * self.out_channels

    @property
    def is_hardware(self) -> bool:
        """fp32 layers have no integer datapath; they run on the host (docs/arithmetic.md §9)."""
        return self.scheme != "fp32"

    @property
    def activation_signed(self) -> bool:
        return self.activation_bits > 1

    @property
    def spike_signed(self) -> bool:
        return self.neuron.type == "ternary"

    # ---- widths ---------------------------------------------------------------------------
    def widths(self, weights: LayerWeights | None = None, *, weight_bound: int | None = None) -> LayerWidths:
        """Derive every bound and width; biases/thresholds come from ``weights`` when given.

        ``weight_bound`` replaces the scheme's largest |weight| (area experiments only: with a
        bound below the codes' the datapath can overflow)."""
        if not self.is_hardware:
            raise ConfigError(f"layer {self.name!r}: scheme fp32 has no integer widths")
        w_max = weight_max_abs(self.scheme, self.bits) if weight_bound is None else weight_bound
        x_max = activation_max_abs(self.activation_bits)
        current = self.fan_in * w_max * x_max
        if weights is None:
            bias_bound, thr_max = 0, self.neuron.threshold
        else:
            bias_bound = int(np.abs(weights.bias).max(initial=0))
            thr_max = int(weights.threshold.max(initial=1))
        if self.membrane == "integer":
            membrane = self.time_steps * (current + bias_bound)
        else:
            membrane = thr_max + current + bias_bound
        return LayerWidths(
            weight_max_abs=w_max, activation_max_abs=x_max, current_bound=current,
            bias_bound=bias_bound, threshold_max=thr_max, membrane_bound=membrane,
            current_width=signed_width(current), membrane_width=signed_width(membrane),
            bias_width=signed_width(bias_bound), threshold_width=int(thr_max).bit_length(),
        )


@dataclass(frozen=True)
class AttentionConfig:
    """The spiking self-attention unit of every block (docs/arithmetic.md §11):
    ``metadata.network.attention``. ``neuron.threshold`` is the unit's scalar threshold;
    ``lanes`` the unit's parallel lanes (``None``: the generator's lanes policy chooses)."""

    variant: Literal["ssa", "a2os2a"]
    heads: int
    neuron: NeuronConfig
    membrane: Literal["integer", "ternary"]
    lanes: int | None = None

    @property
    def threshold(self) -> int:
        return self.neuron.threshold


@dataclass(frozen=True)
class GraphNode:
    """One node of a feed-forward graph (``metadata.network.nodes``): ``layer`` (the conv/linear
    layer of the same name), ``sumpool`` (``kernel``×``kernel`` sum, stride ``kernel``),
    ``flatten`` ((C, H, W) → C·H·W in (c, y, x) order) or ``add`` (sum of its two inputs).
    ``shape`` is its output's (C, H, W), ``value_range`` the integers its output can carry."""

    name: str
    op: Literal["layer", "sumpool", "flatten", "add"]
    inputs: tuple[str, ...]
    shape: tuple[int, int, int]
    value_range: tuple[int, int]
    kernel: int = 1


@dataclass(frozen=True)
class NetworkGraph:
    """The graph around the layers (``metadata.network``), one of two architectures:

    * ``spikformer`` (written by the search's export): ``len(pool_after)`` tokenizer convs
      ``tok0…`` (2×2 max pooling after those marked), the relative-position conv ``rpe``,
      ``depth`` blocks of ``b<i>_{q,k,v,proj,fc1,fc2}`` with one attention unit each, and the
      ``head`` with its readout (docs/arithmetic.md §12);
    * ``feedforward`` (written by ``spikehq import-nir``): ``nodes`` in dataflow order from the
      binary event frame ``input_shape`` (C, H, W), the class scores counting the spikes of the
      layer ``output`` (docs/arithmetic.md §14).
    """

    architecture: Literal["spikformer", "feedforward"]
    pool_after: tuple[bool, ...] = ()
    depth: int = 0
    token_grid: tuple[int, int] = (1, 1)
    attention: AttentionConfig | None = None
    readout: str = ""
    model: dict = field(default_factory=dict, compare=False)   # the exporter's training settings
    input_shape: tuple[int, int, int] = (1, 1, 1)
    nodes: tuple[GraphNode, ...] = ()
    output: str = ""
    stream_fifo: int = DEFAULT_STREAM_FIFO    # entries of the FIFO in front of each PE (generation)

    @property
    def tokens(self) -> int:
        return self.token_grid[0] * self.token_grid[1]

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every conv/linear layer of the graph, in dataflow order."""
        if self.architecture == "feedforward":
            return tuple(n.name for n in self.nodes if n.op == "layer")
        names = [f"tok{i}" for i in range(len(self.pool_after))] + ["rpe"]
        names += [f"b{b}_{n}" for b in range(self.depth) for n in ("q", "k", "v", "proj", "fc1", "fc2")]
        return tuple(names + ["head"])

    def after_block(self, b: int) -> str:
        """The layer that consumes block ``b``'s output (``b = -1``: the rpe residual's)."""
        return f"b{b + 1}_q" if b + 1 < self.depth else "head"

    def node(self, name: str) -> GraphNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self, name: str) -> list[GraphNode]:
        """The nodes reading ``name`` (``"input"``: the event frame), once per input they take."""
        return [n for n in self.nodes for i in n.inputs if i == name]


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    time_steps: int
    layers: tuple[LayerConfig, ...]
    source: Path | None = None
    metadata: dict = field(default_factory=dict, compare=False)
    graph: NetworkGraph | None = None    # metadata.network, parsed and checked by load_config

    @property
    def where(self) -> str:
        """How errors name this config: its file, else its name."""
        return str(self.source or self.name)

    def layer(self, name: str) -> LayerConfig:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


# ---- JSON schema ---------------------------------------------------------------------------

@cache
def _schema() -> dict:
    text = resources.files(__package__).joinpath("searched.schema.json").read_text()
    return json.loads(text)


def _path_text(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def _schema_error_text(error: jsonschema.ValidationError) -> str:
    where = _path_text(error.absolute_path)
    v, got = error.validator, error.instance
    if v == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"{where}: missing required field {missing[0]!r}"
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"{where}: unknown field {extra[0]!r}"
    if v == "enum":
        return f"{where}: expected one of {', '.join(map(json.dumps, error.validator_value))}, got {json.dumps(got)}"
    if v == "const":
        return f"{where}: expected {json.dumps(error.validator_value)}, got {json.dumps(got)}"
    if v == "type":
        return f"{where}: expected {error.validator_value}, got {json.dumps(got)}"
    if v in ("minimum", "exclusiveMinimum", "maximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<="}[v]
        return f"{where}: expected a value {op} {error.validator_value}, got {json.dumps(got)}"
    if v == "pattern":
        return f"{where}: expected an identifier (letters, digits, _), got {json.dumps(got)}"
    if v in ("minItems", "minLength") and (error.validator_value > 1 or len(got)):
        return f"{where}: expected at least {error.validator_value} items, got {len(got)}"
    if v in ("minItems", "minLength"):
        return f"{where}: must not be empty"
    if v == "maxItems":
        return f"{where}: expected at most {error.validator_value} items, got {len(got)}"
    return f"{where}: {error.message}"


# ---- semantic checks -----------------------------------------------------------------------

_LINEAR_FIELDS = {"in_features", "out_features", "tokens"}
_CONV_FIELDS = {"in_channels", "out_channels", "kernel_size", "padding", "height", "width"}


def default_lanes(channels: int) -> int:
    """Lanes when none are given: the largest divisor of ``channels`` up to ``MAX_DEFAULT_LANES``."""
    return max(d for d in range(1, MAX_DEFAULT_LANES + 1) if channels % d == 0)


def _layer(raw: dict, where: str, time_steps: int, base_dir: Path | None) -> LayerConfig:
    kind = raw["kind"]
    own, other = (_LINEAR_FIELDS, _CONV_FIELDS) if kind == "linear" else (_CONV_FIELDS, _LINEAR_FIELDS)
    for key in sorted(other & raw.keys()):
        raise ConfigError(f"{where}.{key}: not a field of a {kind} layer (use {', '.join(sorted(own))})")
    required = ("in_features", "out_features") if kind == "linear" else (
        "in_channels", "out_channels", "kernel_size", "height", "width")
    for key in required:
        if key not in raw:
            raise ConfigError(f"{where}: missing required field {key!r} for a {kind} layer")
    if kind == "linear":
        geometry = dict(in_channels=raw["in_features"], out_channels=raw["out_features"],
                        kernel_size=1, padding=0, height=raw.get("tokens", 1), width=1)
    else:
        k = raw["kernel_size"]
        padding = raw.get("padding", (k - 1) // 2)
        if padding > k - 1:
            raise ConfigError(f"{where}.padding: expected at most kernel_size - 1 = {k - 1}, got {padding}")
        geometry = dict(in_channels=raw["in_channels"], out_channels=raw["out_channels"],
                        kernel_size=k, padding=padding, height=raw["height"], width=raw["width"])

    scheme = raw["scheme"]
    if scheme == "fp32":
        bits = raw.get("bits", 32)
        if bits != 32:
            raise ConfigError(f"{where}.bits: an fp32 layer has 32 bits, got {bits}")
    else:
        if "bits" not in raw:
            raise ConfigError(f"{where}: missing required field 'bits' for a {scheme} layer")
        bits = raw["bits"]
        if bits not in SCHEMES[scheme]:
            raise ConfigError(f"{where}.bits: a {scheme} layer takes 2 or 4 bits, got {bits}")

    out_channels = geometry["out_channels"]
    lanes = raw.get("lanes", default_lanes(out_channels))
    if out_channels % lanes:
        raise ConfigError(f"{where}.lanes: must divide the {out_channels} output channels, got {lanes}")

    if (raw["neuron"]["type"] == "relu") != ("bits" in raw["neuron"]):
        raise ConfigError(f"{where}.neuron.bits: " + ("required for a relu neuron" if "bits" not in raw["neuron"]
                                                      else f"not a field of a {raw['neuron']['type']} neuron"))
    neuron = NeuronConfig(**raw["neuron"])
    membrane = raw.get("membrane", "integer")
    if membrane == "binary" and neuron.type == "ternary":
        raise ConfigError(f"{where}.membrane: a binary membrane silences the -1 spikes (SpQuant eq. 20), "
                          f"which leaves a ternary neuron a binary LIF: use neuron type 'lif'")
    prune_k = raw.get("spatial_prune_k", 0)
    if prune_k:
        positions = (geometry["height"] + 2 * geometry["padding"] - geometry["kernel_size"] + 1) * (
            geometry["width"] + 2 * geometry["padding"] - geometry["kernel_size"] + 1)
        if kind != "conv2d" or neuron.type == "relu":
            raise ConfigError(f"{where}.spatial_prune_k: spatial pruning needs a conv2d layer with a spiking "
                              f"neuron, got a {kind} layer with a {neuron.type} neuron (use 0)")
        if prune_k >= positions:
            raise ConfigError(f"{where}.spatial_prune_k: expected 0 (off) or 1 … {positions - 1} "
                              f"(below the {positions} output positions), got {prune_k}")
    weights_path = None
    if "weights" in raw:
        weights_path = Path(raw["weights"])
        if not weights_path.is_absolute() and base_dir is not None:
            weights_path = base_dir / weights_path
        if not weights_path.is_file():
            raise ConfigError(f"{where}.weights: file not found: {weights_path}")
    return LayerConfig(
        name=raw["name"], kind=kind, **geometry, scheme=scheme, bits=bits,
        activation_bits=raw.get("activation_bits", 1), lanes=lanes, neuron=neuron,
        membrane=membrane, time_steps=time_steps, weights_path=weights_path,
        weight_scale=raw.get("weight_scale"), group=raw.get("group"), lanes_explicit="lanes" in raw,
        input_events=raw.get("input_events"), spatial_prune_k=prune_k)


def _graph(raw: dict, where: str, layers: dict[str, LayerConfig]) -> NetworkGraph:
    """``metadata.network`` (already schema-checked) → :class:`NetworkGraph`, checked against
    the layers it names."""
    if raw["architecture"] == "feedforward":
        return _feedforward_graph(raw, where, layers)
    model, att = raw["model"], raw["attention"]
    neuron = att["neuron"]
    graph = NetworkGraph(
        architecture=raw["architecture"], pool_after=tuple(model["pool_after"]), depth=model["depth"],
        token_grid=tuple(raw["token_grid"]),
        attention=AttentionConfig(variant=att["variant"], heads=att["heads"], membrane=att["membrane"],
                                  neuron=NeuronConfig(type=neuron["type"], threshold=att["threshold"],
                                                      leak_shift=neuron["leak_shift"], reset=neuron["reset"]),
                                  lanes=att.get("lanes")),
        readout=raw.get("readout", ""), model=model, stream_fifo=raw.get("stream_fifo", DEFAULT_STREAM_FIFO))
    if "tokens" in raw and raw["tokens"] != graph.tokens:
        h, w = graph.token_grid
        raise ConfigError(f"{where}.tokens: expected token_grid {h}×{w} = {graph.tokens}, got {raw['tokens']}")
    for name in graph.layer_names:
        if name not in layers:
            raise ConfigError(f"{where}: layer {name!r} of the graph is missing from layers")
    rpe = layers["rpe"]
    if (rpe.height, rpe.width) != graph.token_grid:
        raise ConfigError(f"{where}.token_grid: expected the rpe layer's [{rpe.height}, {rpe.width}], "
                          f"got {list(graph.token_grid)}")
    _check_attention_neurons(graph, where, layers)
    channels = rpe.out_channels
    if channels % graph.attention.heads:
        raise ConfigError(f"{where}.attention.heads: must divide the {channels} channels, got {graph.attention.heads}")
    head_dim, lanes = channels // graph.attention.heads, graph.attention.lanes
    if lanes is not None and head_dim % lanes:
        raise ConfigError(f"{where}.attention.lanes: must divide the head dimension {head_dim} (channels / heads), "
                          f"got {lanes}")
    return graph


# neuron types of each block's q, k, v per attention variant (docs/arithmetic.md §11)
_ATTENTION_INPUTS = {"ssa": {"q": ("lif", "ternary"), "k": ("lif", "ternary"), "v": ("lif", "ternary")},
                     "a2os2a": {"q": ("lif",), "k": ("relu",), "v": ("ternary",)}}


def _check_attention_neurons(graph: NetworkGraph, where: str, layers: dict[str, LayerConfig]) -> None:
    """q, k, v neurons fit the attention variant; a relu neuron appears nowhere else."""
    variant = graph.attention.variant
    inputs = {f"b{b}_{n}": types for b in range(graph.depth) for n, types in _ATTENTION_INPUTS[variant].items()}
    for name in graph.layer_names:
        types = inputs.get(name, ("lif", "ternary"))
        got = layers[name].neuron.type
        if got not in types:
            role = f"a {variant} attention input" if name in inputs else "a layer outside the attention keys"
            raise ConfigError(f"{where}: layer {name!r}: neuron type {got!r} cannot be {role} "
                              f"(expected {' or '.join(map(repr, types))})")


def _layer_node(raw: dict, where: str, layer: LayerConfig | None, shape, value_range):
    """Output (shape, value range) of a layer node reading ``shape``/``value_range``."""
    name = raw["name"]
    if layer is None:
        raise ConfigError(f"{where}.name: layer {name!r} of the graph is missing from layers")
    want = (layer.in_channels, layer.height, layer.width)
    if tuple(shape) != want:
        raise ConfigError(f"{where}.inputs: layer {name!r} takes [channels, height, width] {list(want)}, "
                          f"its input {raw['inputs'][0]!r} gives {list(shape)}")
    if layer.neuron.type == "relu":
        raise ConfigError(f"{where}: layer {name!r}: a relu neuron is only an A2OS2A attention key "
                          "(feed-forward graphs take 'lif' or 'ternary')")
    lo, hi = activation_range(layer.activation_bits)
    if value_range[0] < lo or value_range[1] > hi:
        raise ConfigError(f"{where}: layer {name!r}: activation_bits {layer.activation_bits} holds [{lo}, {hi}], "
                          f"its input carries [{value_range[0]}, {value_range[1]}]")
    spikes = (-1, 1) if layer.neuron.type == "ternary" else (0, 1)
    return (layer.out_channels, layer.out_height, layer.out_width), spikes


def _feedforward_graph(raw: dict, where: str, layers: dict[str, LayerConfig]) -> NetworkGraph:
    """A feed-forward graph: every input defined before use, shapes and value ranges derived
    node by node (a layer's activation_bits must hold its input's range), every layer used once."""
    shapes = {"input": tuple(raw["input"])}
    ranges = {"input": (0, 1)}
    nodes = []
    for index, node in enumerate(raw["nodes"]):
        at, name, op, inputs = f"{where}.nodes[{index}]", node["name"], node["op"], node["inputs"]
        if name in shapes:
            raise ConfigError(f"{at}.name: duplicate node name {name!r}")
        for i in inputs:
            if i not in shapes:
                raise ConfigError(f"{at}.inputs: {i!r} is not 'input' or an earlier node")
        arity = 2 if op == "add" else 1
        if len(inputs) != arity:
            raise ConfigError(f"{at}.inputs: a {op} node takes {arity} input(s), got {len(inputs)}")
        if ("kernel" in node) != (op == "sumpool"):
            raise ConfigError(f"{at}.kernel: " + ("required for a sumpool node" if op == "sumpool"
                                                  else f"not a field of a {op} node"))
        shape, (lo, hi) = shapes[inputs[0]], ranges[inputs[0]]
        c, h, w = shape
        if op == "layer":
            shape, (lo, hi) = _layer_node(node, at, layers.get(name), shape, (lo, hi))
        elif op == "sumpool":
            k = node["kernel"]
            if h % k or w % k:
                raise ConfigError(f"{at}.kernel: must divide the input's {h}×{w} pixels, got {k}")
            shape, lo, hi = (c, h // k, w // k), lo * k * k, hi * k * k
        elif op == "flatten":
            shape = (c * h * w, 1, 1)
        else:
            if shapes[inputs[1]] != shape:
                raise ConfigError(f"{at}.inputs: an add needs equal shapes, got {list(shape)} and "
                                  f"{list(shapes[inputs[1]])}")
            lo, hi = lo + ranges[inputs[1]][0], hi + ranges[inputs[1]][1]
        shapes[name], ranges[name] = shape, (lo, hi)
        nodes.append(GraphNode(name=name, op=op, inputs=tuple(inputs), shape=shape, value_range=(lo, hi),
                               kernel=node.get("kernel", 1)))
    output = raw["output"]
    if not any(n.name == output and n.op == "layer" for n in nodes):
        raise ConfigError(f"{where}.output: expected a layer node, got {output!r}")
    for name in layers:
        if not any(n.name == name and n.op == "layer" for n in nodes):
            raise ConfigError(f"{where}.nodes: layer {name!r} is not in the graph")
    return NetworkGraph(architecture="feedforward", input_shape=tuple(raw["input"]), nodes=tuple(nodes),
                        output=output, readout=raw.get("readout", ""),
                        stream_fifo=raw.get("stream_fifo", DEFAULT_STREAM_FIFO))


def config_from_dict(raw: dict, *, source: str | Path = "<config>", base_dir: Path | None = None) -> NetworkConfig:
    """Validate a parsed searched.json and build the config object. Raises :class:`ConfigError`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object at the top level")
    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is not None:
        raise ConfigError(f"{source}: {_schema_error_text(error)}")
    layers, seen = [], set()
    for index, raw_layer in enumerate(raw["layers"]):
        where = f"{source}: layers[{index}]"
        if raw_layer["name"] in seen:
            raise ConfigError(f"{where}.name: duplicate layer name {raw_layer['name']!r}")
        seen.add(raw_layer["name"])
        layers.append(_layer(raw_layer, where, raw["time_steps"], base_dir))
    metadata = raw.get("metadata", {})
    graph = None
    if "network" in metadata:
        graph = _graph(metadata["network"], f"{source}: metadata.network", {l.name: l for l in layers})
    return NetworkConfig(name=raw["name"], time_steps=raw["time_steps"], layers=tuple(layers),
                         source=Path(source) if source != "<config>" else None,
                         metadata=metadata, graph=graph)


def load_config(path: str | Path) -> NetworkConfig:
    """Read and validate a searched.json file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return config_from_dict(raw, source=path, base_dir=path.parent)


# ---- weights files -------------------------------------------------------------------------

def _int_array(value, where: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a nested list of shape {list(shape)}, got a ragged list") from None
    if array.shape != shape:
        raise ConfigError(f"{where}: expected shape {list(shape)}, got {list(array.shape)}")
    if array.size and array.dtype.kind not in "iu":
        raise ConfigError(f"{where}: expected integers, got {array.dtype.name} values")
    return array.astype(np.int64)


def load_weights(layer: LayerConfig) -> LayerWeights | None:
    """Load and check a layer's integer weights file; ``None`` when the layer has none.

    File format (JSON): ``{"format": "spikehq-weights", "version": 1, "layer": name,
    "codes": [[...]], "bias": [...], "threshold": [...]}``. ``codes`` is
    [out_features][in_features] for linear layers and [out][in][k][k] for conv2d; ``bias``
    defaults to zeros and ``threshold`` to the layer's scalar neuron threshold.
    """
    if layer.weights_path is None or not layer.is_hardware:
        return None
    path = layer.weights_path
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    if raw.get("format") != WEIGHTS_FORMAT or raw.get("version") != VERSION:
        raise ConfigError(f"{path}: expected format {WEIGHTS_FORMAT!r} version {VERSION}, "
                          f"got {raw.get('format')!r} version {raw.get('version')!r}")
    if raw.get("layer") != layer.name:
        raise ConfigError(f"{path}.layer: expected {layer.name!r}, got {raw.get('layer')!r}")
    if "codes" not in raw:
        raise ConfigError(f"{path}: missing required field 'codes'")
    O, C, k = layer.out_channels, layer.in_channels, layer.kernel_size
    shape = (O, C) if layer.kind == "linear" else (O, C, k, k)
    codes = _int_array(raw["codes"], f"{path}.codes", shape).reshape(O, C, k, k)
    bad = check_codes(codes, layer.bits)
    if bad is not None:
        raise ConfigError(f"{path}.codes: expected {layer.bits}-bit code words in [0, {2 ** layer.bits - 1}], got {bad}")
    bias = _int_array(raw.get("bias", [0] * O), f"{path}.bias", (O,))
    threshold = _int_array(raw.get("threshold", [layer.neuron.threshold] * O), f"{path}.threshold", (O,))
    if (threshold < 1).any():
        raise ConfigError(f"{path}.threshold: expected integers >= 1, got {int(threshold.min())}")
    if np.abs(bias).max(initial=0) >= 2 ** 30 or threshold.max(initial=1) >= 2 ** 20:
        raise ConfigError(f"{path}: bias must stay within ±2^30 and threshold below 2^20")
    return LayerWeights(codes=codes, bias=bias, threshold=threshold)
