"""spikehq: heterogeneous quantization search for spiking transformers, down to verified RTL.

The code lives in the top-level folders that show the architecture and is installed as
sub-packages of this one: ``spikehq.golden`` (``golden/``), ``spikehq.rtl`` (``rtl/``) and
``spikehq.sim`` (``sim/``).
"""

__version__ = "0.1.0"
