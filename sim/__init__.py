"""Verification of the RTL against the golden model: shared vectors, an amaranth.sim driver,
and the cocotb testbench run on Verilator through the cocotb runner."""
