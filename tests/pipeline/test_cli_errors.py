"""The CLI turns a path of the wrong kind into one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.cli import main
from curate.errors import ConfigError, check_output_file


def test_output_file_that_is_a_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.jsonl").write_text(json.dumps({"instruction": "Say hi", "input": "", "output": "Hi."}) + "\n")
    (tmp_path / "outdir").mkdir()
    assert main(["ingest", "alpaca", "a.jsonl", "-o", "outdir", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == "error: outdir: is a folder, not a file; check the path\n"
    assert (tmp_path / "outdir").is_dir() and not list((tmp_path / "outdir").iterdir())


def test_check_output_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    assert check_output_file(tmp_path / "new.parquet") == tmp_path / "new.parquet"
    with pytest.raises(ConfigError) as e:
        check_output_file(tmp_path / "d")
    assert str(e.value) == f"-o {tmp_path / 'd'}: is a folder; give a file path, e.g. {tmp_path / 'd' / 'out.parquet'}"
    with pytest.raises(ConfigError) as e:
        check_output_file(tmp_path / "f" / "out.parquet", "--output")
    assert str(e.value) == f"--output {tmp_path / 'f' / 'out.parquet'}: {tmp_path / 'f'} is a file, so it cannot hold out.parquet"
