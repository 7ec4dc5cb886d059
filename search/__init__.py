"""The training side of spikehq: the SpikeHQ search (``python -m spikehq.search``).

``model`` (the spiking transformer supernet), ``quantize`` (quantizers and every
straight-through estimator), ``cost`` (the hardware cost model), ``fpga_cost`` (the FPGA cost
model fitted on the generated PEs, data in ``data/``), ``data`` (event data sets),
``trainer`` (search, QAT and evaluation loops), ``cli`` (the command line), ``export``
(``searched.json`` and integer weights for :mod:`spikehq.golden`) and ``report``.

It depends on :mod:`spikehq.golden` (the integer contract); the contract never imports it.
"""
