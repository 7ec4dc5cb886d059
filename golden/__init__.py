"""Golden side of spikehq: the config object, weight codes, quantizers and the bit-exact
integer reference model that the RTL is checked against (docs/arithmetic.md)."""
