"""``spikehq COMMAND …``: one entry point for the project's commands (each also has its own
``spikehq-<command>`` script and ``make`` target)."""

from __future__ import annotations

import sys

__all__ = ["main", "COMMANDS"]

COMMANDS = {
    "import-nir": ("spikehq.nirio.cli", "NIR graph → searched.json + weights (docs/nir.md)"),
    "gen": ("spikehq.rtl.gen", "searched.json → Verilog, manifest, weight init data"),
    "search": ("spikehq.search.cli", "quantization search on event data → searched.json"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        lines = [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
        print("usage: spikehq COMMAND [ARGS]   (spikehq COMMAND --help for its options)\n\ncommands:\n"
              + "\n".join(lines), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from importlib import import_module
    return import_module(COMMANDS[argv[0]][0]).main(argv[1:])
