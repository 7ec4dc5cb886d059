"""The integer contract of spikehq (docs/arithmetic.md): weight codes, the validated config
object with its network graph, the bit-exact integer layer reference, integer attention and the
integer network. Nothing here trains or differentiates, and nothing imports :mod:`spikehq.search`."""
