from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.cli import main


def test_cli_export_hub_and_summary(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["export", str(run_dir), str(out), "--splits", "train=rest,validation=4", "--seed", "3",
               "--license", "vicuna=cc-by-4.0"])
    assert rc == 0
    assert "exported 16 of 16 kept conversations as hub" in capsys.readouterr().out
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["seed"] == 3 and manifest["splits"]["validation"]["rows"] == 4
    assert manifest["licenses"]["vicuna"] == "cc-by-4.0"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "text"], "--format text needs --template"),
        (["--template", "chatml"], "--template applies only to --format text"),
        (["--splits", "train=0.5"], "sum to 0.5"),
        (["--shard-rows", "0"], "--shard-rows must be >= 1"),
        (["--license", "nosuch=mit"], "unknown source"),
        (["--private"], "--private applies only with --push-to-hub"),
        (["--push-to-hub", "not a repo"], "expected ORG/NAME"),
    ],
)
def test_cli_bad_options_exit_2_with_a_fix(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["export", str(run_dir), str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_refuses_existing_out_dir_without_overwrite(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["export", str(run_dir), str(out)]) == 0
    assert main(["export", str(run_dir), str(out), "--format", "openai"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(run_dir), str(out), "--format", "openai", "--overwrite"]) == 0
    assert (out / "train.jsonl").exists() and not (out / "data").exists()


def test_cli_not_a_run_dir(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "not a curate run directory" in capsys.readouterr().err


def _no_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    def fail(*a, **k):
        raise AssertionError("nothing may be uploaded")

    monkeypatch.setattr(HfApi, "create_repo", fail)
    monkeypatch.setattr(HfApi, "upload_folder", fail)


def test_push_offline_fails_before_anything(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    _no_upload(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    out = tmp_path / "out"
    assert main(["export", str(run_dir), str(out), "--push-to-hub", "me/ds", "--private"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE is set" in err and "Nothing was uploaded" in err
    assert not out.exists()


def test_push_unreachable_hub_fails_before_anything(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from huggingface_hub import constants

    _no_upload(monkeypatch)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # closed port: connection refused
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    out = tmp_path / "out"
    assert main(["export", str(run_dir), str(out), "--push-to-hub", "me/ds"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Hub" in err and "Nothing was uploaded" in err
    assert not out.exists()


def test_push_without_token_says_how_to_log_in(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from huggingface_hub import constants

    _no_upload(monkeypatch)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    assert main(["export", str(run_dir), str(tmp_path / "out"), "--push-to-hub", "me/ds"]) == 2
    assert "hf auth login" in capsys.readouterr().err


def test_push_uploads_one_folder_after_whoami(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from huggingface_hub import HfApi, constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(HfApi, "whoami", lambda self, *a, **k: calls.append(("whoami", {})) or {"name": "me"})
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **k: calls.append(("create_repo", {"repo_id": repo_id, **k})))

    def upload(self, **k):
        assert (Path(k["folder_path"]) / "README.md").exists()  # the finished folder, never a temp one
        calls.append(("upload_folder", k))

    monkeypatch.setattr(HfApi, "upload_folder", upload)
    out = tmp_path / "out"
    assert main(["export", str(run_dir), str(out), "--push-to-hub", "me/ds", "--private"]) == 0
    assert [c[0] for c in calls] == ["whoami", "create_repo", "upload_folder"]
    assert calls[1][1]["private"] is True and calls[1][1]["repo_type"] == "dataset"
    assert calls[2][1]["folder_path"] == str(out.absolute())
    assert "pushed to https://huggingface.co/datasets/me/ds" in capsys.readouterr().out
