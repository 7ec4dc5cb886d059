"""Amaranth RTL of spikehq: MACs, neuron units, the spiking processing element and the
Verilog generator. Everything follows docs/arithmetic.md."""
