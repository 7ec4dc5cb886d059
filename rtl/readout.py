"""Classification readout of the head layer (docs/arithmetic.md §12).

The head is a soft-reset, leak-free, bias-free integrator per token and class, so its total
input over the sample is ``Σ_t I_t = h_T + θ·Σ_t S_t``. Summed over tokens (global average
pooling without the division, which argmax does not need) that is each class score:

    score[c] = Σ_tokens ( h_T[token, c] + θ_c · spikes[token, c] )

``θ_c`` is added once per head spike as it streams past (a cycle later: the spike's class is
registered first); after the end token of the last step the membranes are read through the
head PE's ``membrane_probe`` port (``tokens·G + 2`` cycles, one lane group per cycle, each word
registered before it is added), then the argmax takes one cycle per class plus one (each
candidate is registered before the compare; ties go to the lowest class, as
``torch.argmax``). Then ``o_result`` holds the scores and the class.
``busy`` is high from the last end token until the result is taken: the head's membranes
must not change meanwhile, so the network holds the head's input back.
"""

from __future__ import annotations

from amaranth import Mux, Signal, signed
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.config import LayerConfig, LayerWeights, signed_width
from .events import event_layout, index_shape
from .neuron import spike_shape
from .pe import MembraneProbeSignature

__all__ = ["HeadReadout", "result_layout", "score_bound"]


def score_bound(layer: LayerConfig, weights: LayerWeights) -> int:
    """|score| ≤ tokens · (membrane bound + θ_max · T)."""
    w = layer.widths(weights)
    return layer.height * (w.membrane_bound + w.threshold_max * layer.time_steps)


def result_layout(layer: LayerConfig, weights: LayerWeights) -> data.StructLayout:
    return data.StructLayout({
        "scores": data.ArrayLayout(signed(signed_width(score_bound(layer, weights))), layer.out_channels),
        "label": index_shape(layer.out_channels),
    })


class HeadReadout(wiring.Component):
    """Scores and predicted class from the head PE's spikes and final membranes."""

    def __init__(self, *, layer: LayerConfig, weights: LayerWeights, membrane_word):
        if (layer.neuron.type, layer.neuron.reset, layer.neuron.leak_shift, layer.membrane) != \
                ("lif", "soft", 0, "integer") or int(abs(weights.bias).max(initial=0)) != 0:
            raise ValueError(f"layer {layer.name!r}: the readout needs the exported head neuron "
                             "(binary LIF, soft reset, leak_shift 0, integer membrane, zero bias)")
        self.layer, self.weights = layer, weights
        self.layout = result_layout(layer, weights)
        super().__init__({
            "i_spikes": In(stream.Signature(event_layout(layer.out_height, layer.out_width, layer.out_channels,
                                                         spike_shape("lif")))),
            "membrane_probe": Out(MembraneProbeSignature(
                addr_width=index_shape(layer.out_height * layer.out_width * layer.groups).width,
                word_shape=membrane_word)),
            "o_result": Out(stream.Signature(self.layout)),
            "busy": Out(1),             # reading membranes or holding a result: keep the head's input back
        })

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        classes, L, G = layer.out_channels, layer.lanes, layer.groups
        depth = layer.out_height * layer.out_width * G
        theta = [int(v) for v in self.weights.threshold.tolist()]
        scores = Signal(self.layout.members["scores"])
        step = Signal(index_shape(layer.time_steps))
        addr = Signal(range(depth + 1))                 # probe address being requested
        label, index = Signal(index_shape(classes)), Signal(range(classes + 1))
        i = self.i_spikes
        m.d.comb += [self.o_result.payload.scores.eq(scores), self.o_result.payload.label.eq(label),
                     self.membrane_probe.addr.eq(addr)]
        # registered stages: a spike's class (added a cycle later), a probed word, an argmax candidate
        spike, spike_c = Signal(), Signal.like(i.payload.c)
        word, word_valid, group = Signal.like(self.membrane_probe.data), Signal(), Signal(index_shape(G))
        m.d.sync += [spike.eq(0), word_valid.eq(0)]
        with m.If(spike):
            self._add_switch(m, scores, spike_c, {c: [(c, theta[c])] for c in range(classes)})
        with m.If(word_valid):
            m.d.sync += group.eq(Mux(group == G - 1, 0, group + 1))
            self._add_switch(m, scores, group, {g: [(g * L + l, word[l]) for l in range(L)] for g in range(G)})
        with m.FSM(name="readout") as fsm:
            with m.State("SPIKES"):
                m.d.comb += i.ready.eq(1)
                m.d.sync += [spike.eq(i.valid & ~i.payload.end), spike_c.eq(i.payload.c)]
                with m.If(i.valid & i.payload.end):
                    with m.If(step == layer.time_steps - 1):
                        m.d.sync += [step.eq(0), addr.eq(0), group.eq(0)]
                        m.next = "MEMBRANES"
                    with m.Else():
                        m.d.sync += step.eq(step + 1)
            with m.State("MEMBRANES"):
                # request addr; its data arrives a cycle later and is registered, then added
                m.d.sync += addr.eq(addr + 1)
                with m.If(addr != 0):
                    m.d.sync += [word.eq(self.membrane_probe.data), word_valid.eq(1)]
                with m.If(addr == depth):
                    m.next = "DRAIN"
            with m.State("DRAIN"):               # the last word is added this cycle
                m.d.sync += index.eq(0)
                m.next = "ARGMAX"
            with m.State("ARGMAX"):
                self._argmax(m, scores, index, label, classes)
            with m.State("RESULT"):
                m.d.comb += self.o_result.valid.eq(1)
                with m.If(self.o_result.ready):
                    m.d.sync += [s.eq(0) for s in scores]
                    m.next = "SPIKES"
        m.d.comb += self.busy.eq(~fsm.ongoing("SPIKES"))
        return m

    @staticmethod
    def _add_switch(m, scores, selector, cases: dict) -> None:
        """``scores[k] += v`` for every ``(k, v)`` of the case ``selector`` takes."""
        with m.Switch(selector):
            for key, adds in cases.items():
                with m.Case(key):
                    m.d.sync += [scores[k].eq(scores[k] + v) for k, v in adds]

    def _argmax(self, m, scores, index, label, classes) -> None:
        """One class per cycle: register the candidate ``scores[index]``, compare it the cycle
        after (ties keep the lower class, as ``torch.argmax``); RESULT after the last one."""
        best = Signal(self.layout.members["scores"].elem_shape)
        candidate = Signal.like(best)
        cand_index, cand_valid = Signal.like(label), Signal()
        m.d.sync += [candidate.eq(scores[index]), cand_index.eq(index), cand_valid.eq(index != classes)]
        with m.If(index != classes):
            m.d.sync += index.eq(index + 1)
        with m.If(cand_valid & ((cand_index == 0) | (candidate > best))):
            m.d.sync += [best.eq(candidate), label.eq(cand_index)]
        with m.If((index == classes) & ~cand_valid):
            m.next = "RESULT"
