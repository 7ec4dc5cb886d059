"""Implementation estimates: yosys/nextpnr synthesis of the generated RTL, area, Fmax, power."""
