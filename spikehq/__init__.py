"""spikehq: heterogeneous quantization search for spiking transformers, down to verified RTL.

The code lives in the top-level folders that show the architecture and is installed as
sub-packages of this one. Dependencies flow one way::

    search/ (training)  ─┐
                         ├─▶ golden/ (the integer contract: config, codes, integer reference)
    rtl/ (Amaranth)  ────┘         ▲
    sim/ (verification) ─▶ rtl/, golden/ (and search/data for the digits test set)
    synth/ (yosys/nextpnr) ─▶ rtl/, sim/, golden/, search/cost

``golden`` imports nothing from ``search``; ``rtl`` and ``make gen`` need no PyTorch.
"""

__version__ = "0.1.0"
