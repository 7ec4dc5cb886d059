"""``spikehq COMMAND``: the one entry point dispatches to each command's own main."""

from __future__ import annotations

import pytest

from spikehq.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_command_is_refused(capsys):
    assert main(["frobnicate"]) == 2
    assert "usage: spikehq COMMAND" in capsys.readouterr().err


def test_import_nir_dispatches(tmp_path, capsys):
    assert main(["import-nir", str(tmp_path / "missing.nir"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.nir: file not found" in capsys.readouterr().err


def test_command_help_is_the_command_s(capsys):
    with pytest.raises(SystemExit) as info:
        main(["import-nir", "--help"])
    assert info.value.code == 0 and "spikehq import-nir" in capsys.readouterr().out
