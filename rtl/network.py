"""Whole-network inference core: one engine per layer, chained by event streams (§12, §14).

The graph is ``metadata.network`` of searched.json, run in software by
:class:`golden.network.IntegerNetwork`: a feed-forward graph (written by ``spikehq
import-nir``: layers, sum pooling, flatten, residual adds, a spike-count readout; see
:meth:`SpikingNetwork._feedforward`), or the Spikformer written by :mod:`search.export`::

    i_events ─▶ tok0 ─▶ tok1 ─▶ [pool] ─▶ … ─▶ tokN ─┬─▶ rpe ─▶ (+) ─▶ x
                                                     └─────────▶ (+)
    x ─┬─▶ q ─┐
       ├─▶ k ─┼─▶ attention ─▶ proj ─▶ (+) ─┬─▶ fc1 ─▶ fc2 ─▶ (+) ─▶ x   (per block)
       ├─▶ v ─┘                        (+) ◀┘                (+)
       └────────────────────────────────┘ skip   └─────────────┘ skip
    x ─▶ head ─▶ readout ─▶ o_result {scores, label}

Every layer is a :class:`SpikingPE` specialized to its scheme, bits and lanes; ``(+)`` is a
:class:`ResidualAdd` carrying multi-bit integers; forks broadcast a stream. Each engine counts
its own time steps, so the T steps of a sample, and consecutive samples, flow through as a
pipeline: ``i_events`` takes samples back to back (T steps each, every step closed by an end
token); only the head's input pauses while the readout reads the head's membranes.

``rst`` may rise at any cycle: the sample in flight is dropped, every engine clears its
run-time memories (``i_events.ready`` low for ``tok0``'s sweep), and the next token starts
step 0 of a new sample (docs/arithmetic.md §13).

With ``share_roms`` (default), small weight ROM banks of different PEs are paired, one on
each port of one true dual-port block RAM (:func:`~.banks.pair_roms`, :class:`~.banks.SharedROM`
``shared_rom<i>``), with the PEs' latency unchanged; ``share_roms=False`` keeps every bank in its PE.

With ``trace=True``, ``o_trace`` holds every traced engine's spike count per time step of
the last sample that engine finished (order: :attr:`SpikingNetwork.traced`); it describes the
sample in ``o_result`` when no later sample has been sent yet.
"""

from __future__ import annotations

from amaranth import Mux, Signal, unsigned
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import ConfigError, LayerWeights, NetworkConfig, NetworkGraph, default_lanes
from .attention import SpikingAttention
from .banks import SharedROM, pair_roms
from .events import connect_events, event_layout, index_shape
from .feedforward import SpikeCountReadout, SumPool, count_result_layout, flatten_events, range_shape
from .glue import EventFork, ResidualAdd, SpikePool2x2, queued, sum_banks
from .mac import activation_shape
from .neuron import spike_shape
from .pe import SpikingPE, weight_banks
from .readout import HeadReadout, result_layout

__all__ = ["SpikingNetwork", "check_hardware"]


def check_hardware(config: NetworkConfig) -> NetworkGraph:
    """The config's graph, when every engine of it can be built: raise :class:`ConfigError` for
    a config without a graph, an fp32 layer or ternary spikes into pooling."""
    graph = config.graph
    if graph is None:
        raise ConfigError(f"{config.where}: metadata.network: missing (the graph written by spikehq.search.export)")
    for name in graph.layer_names:
        if not config.layer(name).is_hardware:
            raise ConfigError(f"{config.where}: layer {name!r}: scheme fp32 has no hardware; "
                              "the network top needs every layer quantized (docs/arithmetic.md §9)")
    for i, pool in enumerate(graph.pool_after):
        if pool and config.layer(f"tok{i}").neuron.type != "lif":
            raise ConfigError(f"{config.where}: layer 'tok{i}': 2×2 pooling in hardware needs "
                              "binary LIF spikes, got neuron type 'ternary'")
    return graph


class SpikingNetwork(wiring.Component):
    """The inference core of an exported searched.json (see the module docstring)."""

    def __init__(self, *, config: NetworkConfig, weights: dict[str, LayerWeights], trace: bool = False,
                 share_roms: bool = True):
        self.config, self.weights, self.trace = config, weights, trace
        self.graph = check_hardware(config)
        self.layers = {name: config.layer(name) for name in self.graph.layer_names}
        self.rom_pairs = pair_roms([bank for name in self.graph.layer_names if weights.get(name) is not None
                                    for bank in weight_banks(name, self.layers[name])]) if share_roms else []
        self.time_steps = config.time_steps
        self.traced = list(self.graph.layer_names)
        self.count_width = max(self.layers[n].out_height * self.layers[n].out_width * self.layers[n].out_channels
                               for n in self.graph.layer_names).bit_length()
        if self.graph.architecture == "feedforward":
            channels, height, width = self.graph.input_shape
            result = count_result_layout(self.layers[self.graph.output])
        else:
            for b in reversed(range(self.graph.depth)):
                self.traced.insert(self.traced.index(f"b{b}_proj"), f"b{b}_attn")
            first = self.layers["tok0"]
            channels, height, width = first.in_channels, first.height, first.width
            result = result_layout(self.layers["head"], weights["head"])
        members = {
            "i_events": In(stream.Signature(event_layout(height, width, channels, unsigned(1)))),
            "o_result": Out(stream.Signature(result)),
        }
        if trace:
            members["o_trace"] = Out(data.ArrayLayout(unsigned(self.count_width), len(self.traced) * self.time_steps))
        super().__init__(members)

    @property
    def attention_lanes(self) -> int | None:
        """Lanes of each attention unit (the config's, else the unit's default); None without attention."""
        att = self.graph.attention
        if self.graph.architecture != "spikformer":
            return None
        return att.lanes or default_lanes(self.layers["b0_q"].out_channels // att.heads)

    @property
    def cycles_after_reset(self) -> int:
        """Cycles after ``rst`` falls before ``i_events.ready`` can rise: the sweep of the
        engine(s) reading the input (docs/arithmetic.md §13)."""
        if self.graph.architecture == "feedforward":
            return self._sweep("input", self.graph.input_shape)
        return SpikingPE(layer=self.layers["tok0"], weights=self.weights["tok0"]).cycles_after_reset

    def _sweep(self, name: str, shape) -> int:
        """The longest reset sweep among the engines reading ``name`` (a fork waits for all)."""
        channels, height, width = shape
        sweeps = []
        for node in self.graph.consumers(name):
            if node.op == "layer":
                sweeps.append(SpikingPE(layer=self.layers[node.name], weights=self.weights[node.name]).cycles_after_reset)
            elif node.op == "sumpool":
                sweeps.append(channels * (height // node.kernel) * (width // node.kernel))
            elif node.op == "add":
                positions = channels * height * width
                sweeps.append(positions * sum_banks(positions, range_shape(*node.value_range)))
            else:
                sweeps.append(self._sweep(node.name, node.shape))
        return max(sweeps, default=0)

    def elaborate(self, platform):
        m = Module()
        self._taps, self._pes = {}, {}
        if self.graph.architecture == "feedforward":
            self._feedforward(m)
        else:
            x = self._tokenizer(m, self.i_events)
            for b in range(self.graph.depth):
                x = self._block(m, b, x)
            self._head(m, x)
        self._shared_roms(m)
        if self.trace:
            self._trace_counters(m)
        return m

    def _shared_roms(self, m) -> None:
        """One :class:`SharedROM` per pair of :attr:`rom_pairs`, each port to its PE's bank."""
        for i, pair in enumerate(self.rom_pairs):
            a, b = self._pes[pair.first.owner], self._pes[pair.second.owner]
            m.submodules[f"shared_rom{i}"] = rom = SharedROM(pair, a.weight_bank_init(pair.first.index),
                                                             b.weight_bank_init(pair.second.index))
            wiring.connect(m, getattr(a, f"weight_bank{pair.first.index}"), rom.a)
            wiring.connect(m, getattr(b, f"weight_bank{pair.second.index}"), rom.b)

    # ---- engines ---------------------------------------------------------------------------
    def _pe(self, m, name: str, src, *, grid_width: int | None = None, probe: bool = False,
            fifo: bool = True) -> SpikingPE:
        """The layer's PE, its input through a FIFO (:meth:`_queue`) unless ``fifo`` is False: not
        for the PEs reading the top's input, whose ``ready`` stays low through their reset sweep
        (docs/arithmetic.md §13), nor for the head (its FIFO sits before the readout's gate)."""
        shared = [bank.index for pair in self.rom_pairs for bank in (pair.first, pair.second) if bank.owner == name]
        pe = SpikingPE(layer=self.layers[name], weights=self.weights[name], probe=probe, shared_banks=shared)
        m.submodules[name] = self._pes[name] = pe
        connect_events(m, self._queue(m, f"{name}_fifo", src) if fifo else src, pe.i_spikes, grid_width=grid_width)
        self._taps[name] = pe.o_spikes
        return pe

    def _queue(self, m, name: str, src):
        """``src`` through a FIFO of ``graph.stream_fifo`` tokens (:func:`~.glue.queued`): while a
        PE updates its neurons, its producer keeps going instead of stalling (docs/synthesis.md)."""
        return queued(m, name, src, self.graph.stream_fifo)

    def _fork(self, m, name: str, src, n: int):
        """Broadcast ``src`` to n outputs."""
        m.submodules[name] = fork = EventFork(src.payload.shape(), n)
        connect_events(m, src, fork.i_events)
        return list(fork.o_events)

    def _residual(self, m, name: str, skip, branch, *, height: int, width: int, out_bits: int | None = None,
                  grid_width: int | None = None, channels: int | None = None, out_shape=None) -> ResidualAdd:
        channels = channels or self.layers["rpe"].out_channels
        # the skip path may run steps ahead of the branch (ResidualAdd's banks)
        out_shape = out_shape if out_shape is not None else activation_shape(out_bits)
        add = ResidualAdd(height=height, width=width, channels=channels,
                          skip_shape=skip.payload.shape().members["value"],
                          branch_shape=branch.payload.shape().members["value"], out_shape=out_shape,
                          banks=sum_banks(height * width * channels, out_shape))
        m.submodules[name] = add
        connect_events(m, skip, add.i_skip, grid_width=grid_width)
        connect_events(m, branch, add.i_branch, grid_width=grid_width)
        return add

    # ---- feed-forward graph (§14) ------------------------------------------------------------
    def _feedforward(self, m):
        """Each node in order: a PE per layer, :class:`SumPool`, :func:`flatten_events`, a
        :class:`ResidualAdd` per add; a fork wherever a value has several consumers; the output
        layer's spikes into :class:`SpikeCountReadout`."""
        graph, ports = self.graph, {}

        def publish(name: str, src) -> None:
            readers = len(graph.consumers(name)) + (name == graph.output)
            if readers == 0:
                m.d.comb += src.ready.eq(1)           # an unread value: drained
            ports[name] = [src] if readers == 1 else self._fork(m, f"{name}_fork", src, readers)

        publish("input", self.i_events)
        for node in graph.nodes:
            src = ports[node.inputs[0]].pop(0)
            channels, height, width = graph.node(node.inputs[0]).shape if node.inputs[0] != "input" \
                else graph.input_shape
            if node.op == "layer":
                publish(node.name, self._pe(m, node.name, src, fifo=node.inputs[0] != "input").o_spikes)
            elif node.op == "sumpool":
                m.submodules[node.name] = pool = SumPool(
                    height=height, width=width, channels=channels, kernel=node.kernel,
                    in_shape=src.payload.shape().members["value"], out_shape=range_shape(*node.value_range))
                connect_events(m, src, pool.i_events)
                publish(node.name, pool.o_events)
            elif node.op == "flatten":
                publish(node.name, flatten_events(m, src, height=height, width=width, channels=channels))
            else:
                add = self._residual(m, node.name, src, ports[node.inputs[1]].pop(0), height=height, width=width,
                                     channels=channels, out_shape=range_shape(*node.value_range))
                publish(node.name, add.o_sum)
        out = self.layers[graph.output]
        m.submodules.readout = readout = SpikeCountReadout(layer=out, value_shape=spike_shape(out.neuron.type))
        connect_events(m, ports[graph.output].pop(0), readout.i_spikes)
        wiring.connect(m, readout.o_result, wiring.flipped(self.o_result))

    # ---- Spikformer graph ------------------------------------------------------------------
    def _tokenizer(self, m, x):
        for i, pool in enumerate(self.graph.pool_after):
            x = self._pe(m, f"tok{i}", x, fifo=i > 0).o_spikes
            if pool:
                layer = self.layers[f"tok{i}"]
                m.submodules[f"pool{i}"] = p = SpikePool2x2(height=layer.out_height, width=layer.out_width,
                                                            channels=layer.out_channels)
                connect_events(m, x, p.i_spikes)
                x = p.o_spikes
        to_rpe, skip = self._fork(m, "rpe_fork", x, 2)
        rpe = self._pe(m, "rpe", to_rpe)
        _, w = self.graph.token_grid
        add = self._residual(m, "rpe_add", skip, rpe.o_spikes, height=self.graph.tokens, width=1, grid_width=w,
                             out_bits=self.layers[self.graph.after_block(-1)].activation_bits)
        return add.o_sum

    def _block(self, m, b: int, x):
        tokens = self.graph.tokens
        to_q, to_k, to_v, skip = self._fork(m, f"b{b}_fork", x, 4)
        q, k, v = (self._pe(m, f"b{b}_{n}", s) for n, s in (("q", to_q), ("k", to_k), ("v", to_v)))
        channels = self.layers[f"b{b}_q"].out_channels
        attention = SpikingAttention(
            tokens=tokens, channels=channels, time_steps=self.time_steps, attention=self.graph.attention,
            lanes=self.attention_lanes,
            **{f"{n}_shape": spike_shape(self.layers[f"b{b}_{n}"].neuron.type, self.layers[f"b{b}_{n}"].neuron.bits)
               for n in ("q", "k", "v")})
        m.submodules[f"b{b}_attn"] = attention
        for port, pe in ((attention.i_q, q), (attention.i_k, k), (attention.i_v, v)):
            connect_events(m, pe.o_spikes, port)
        self._taps[f"b{b}_attn"] = attention.o_spikes
        proj = self._pe(m, f"b{b}_proj", attention.o_spikes)
        add1 = self._residual(m, f"b{b}_attn_add", skip, proj.o_spikes, height=tokens, width=1,
                              out_bits=self.layers[f"b{b}_fc1"].activation_bits)
        to_fc1, skip = self._fork(m, f"b{b}_mlp_fork", add1.o_sum, 2)
        fc1 = self._pe(m, f"b{b}_fc1", to_fc1)
        fc2 = self._pe(m, f"b{b}_fc2", fc1.o_spikes)
        add2 = self._residual(m, f"b{b}_mlp_add", skip, fc2.o_spikes, height=tokens, width=1,
                              out_bits=self.layers[self.graph.after_block(b)].activation_bits)
        return add2.o_sum

    def _head(self, m, x):
        """Head PE and readout; the head's input waits while the readout reads its membranes
        (so a following sample cannot update them before they are read)."""
        x = self._queue(m, "head_fifo", x)       # before the gate: what it holds waits too
        gated = stream.Signature(x.payload.shape()).create()
        head = self._pe(m, "head", gated, probe=True, fifo=False)
        m.submodules.readout = readout = HeadReadout(layer=self.layers["head"], weights=self.weights["head"],
                                                     membrane_word=head.membrane_word)
        m.d.comb += [gated.payload.eq(x.payload), gated.valid.eq(x.valid & ~readout.busy),
                     x.ready.eq(gated.ready & ~readout.busy)]
        connect_events(m, head.o_spikes, readout.i_spikes)
        m.d.comb += [head.membrane_probe.addr.eq(readout.membrane_probe.addr),
                     readout.membrane_probe.data.eq(head.membrane_probe.data)]
        wiring.connect(m, readout.o_result, wiring.flipped(self.o_result))

    def _trace_counters(self, m):
        """Per traced engine: spikes of the current step, latched per step into o_trace."""
        T = self.time_steps
        for i, name in enumerate(self.traced):
            tap = self._taps[name]
            fire = tap.valid & tap.ready
            count = Signal(self.count_width, name=f"trace_{name}_count")
            step = Signal(index_shape(T), name=f"trace_{name}_step")
            with m.If(fire & tap.payload.end):
                m.d.sync += [count.eq(0), step.eq(Mux(step == T - 1, 0, step + 1))]
                with m.Switch(step):
                    for t in range(T):
                        with m.Case(t):
                            m.d.sync += self.o_trace[i * T + t].eq(count)
            with m.Elif(fire):
                m.d.sync += count.eq(count + 1)
