"""synth/__main__.py: ``python -m spikehq.synth`` errors are one line and a non-zero exit."""

import pytest

from spikehq.synth.__main__ import main


def test_cli_bad_config_exits_nonzero(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "missing.json"), "--target", "ecp5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "file not found" in err and "\n" not in err
    assert main(["--config", "configs/example_tiny.json", "--target", "ecp5", "--device", "12k",
                 "--out", str(tmp_path)]) == 2
    assert "Device for target ecp5 must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", "configs/example_tiny.json", "--target", "gowin"])
