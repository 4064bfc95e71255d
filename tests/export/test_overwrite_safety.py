"""Overwrite replaces only what curate wrote; exports say what they cannot train on; dry runs are not exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.cli import main
from curate.errors import ConfigError
from curate.export.run import ExportOptions, RunInfo, export_records, export_run
from curate.layout import RunLayout
from curate.rundir import RunDir
from curate.schema import make_batch
from curate.steps.base import StepContext
from curate.steps.write.hub_dataset import HubDatasetWriter

from .conftest import SPEC, conv


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_export_json_lists_every_file_it_wrote(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_run(run_dir, out, ExportOptions(fmt="alpaca"))
    files = json.loads((out / "export.json").read_text())["files"]
    on_disk = {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert files == {k: v for k, v in on_disk.items() if k != "export.json"}
    assert set(files) == {"README.md", "train.json", "skipped.jsonl", "dataset_info.json"}


def test_overwrite_refuses_a_folder_with_a_file_curate_did_not_write(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["export", str(run_dir), str(out)]) == 0
    (out / "thesis.tex").write_text("\\documentclass{article} years of work")
    capsys.readouterr()
    assert main(["export", str(run_dir), str(out), "--overwrite"]) == 2
    assert _err(capsys) == (
        f"error: {out.absolute()} holds thesis.tex, which curate did not write there (not in its export.json); "
        "refusing to replace the folder even with overwrite. Move it out, or choose another folder.\n"
    )
    assert (out / "thesis.tex").read_text().endswith("years of work")
    (out / "thesis.tex").unlink()
    assert main(["export", str(run_dir), str(out), "--overwrite"]) == 0  # only curate's files: replaced


def test_overwrite_refuses_a_file_in_a_subfolder_and_an_edited_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_run(run_dir, out, ExportOptions())
    (out / "data" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds data/notes.txt, which curate did not write there"):
        export_run(run_dir, out, ExportOptions(overwrite=True))
    (out / "data" / "notes.txt").unlink()
    (out / "extra").mkdir()
    with pytest.raises(ConfigError, match=r"holds extra/, which curate did not write there"):
        export_run(run_dir, out, ExportOptions(overwrite=True))
    (out / "extra").rmdir()
    with (out / "README.md").open("a") as fh:
        fh.write("\nMy own notes on this dataset.\n")
    with pytest.raises(ConfigError, match=r"holds README.md \(changed since curate wrote it: "):
        export_run(run_dir, out, ExportOptions(overwrite=True))
    assert (out / "README.md").read_text().endswith("My own notes on this dataset.\n")


@pytest.mark.parametrize(
    ("marker", "why"),
    [
        ("{}", "(no curate_export version)"),
        ('{"tool": "other", "version": 3}', "(no curate_export version)"),
        ('{"curate_export": 2}', "(it lists no files)"),
        ("not json", "(unreadable: Expecting value: line 1 column 1 (char 0))"),
    ],
)
def test_a_forged_or_foreign_export_json_protects_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], marker: str, why: str
) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "export.json").write_text(marker)
    (out / "thesis.tex").write_text("\\documentclass{article}")
    assert main(["export", str(run_dir), str(out), "--overwrite"]) == 2
    assert _err(capsys) == (
        f"error: {out.absolute()} holds export.json, but it is not a curate export marker {why}; refusing to "
        "replace the folder\n"
    )
    assert (out / "thesis.tex").exists()


def test_a_forged_marker_that_lists_other_files_protects_the_rest(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "export.json").write_text(json.dumps({"curate_export": 2, "files": {"README.md": 3}}))
    (out / "README.md").write_text("abc")
    (out / "thesis.tex").write_text("\\documentclass{article}")
    with pytest.raises(ConfigError, match="holds thesis.tex, which curate did not write there"):
        export_run(run_dir, out, ExportOptions(overwrite=True))
    assert (out / "thesis.tex").exists()


def test_an_export_of_an_older_curate_is_still_replaced(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_run(run_dir, out, ExportOptions())
    manifest = json.loads((out / "export.json").read_text())
    del manifest["files"]
    manifest["curate_export"] = 1
    (out / "export.json").write_text(json.dumps(manifest))
    export_run(run_dir, out, ExportOptions(overwrite=True))
    (out / "thesis.tex").write_text("x")
    manifest = json.loads((out / "export.json").read_text())
    del manifest["files"]
    manifest["curate_export"] = 1
    (out / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="holds thesis.tex"):
        export_run(run_dir, out, ExportOptions(overwrite=True))


def test_write_step_never_deletes_a_foreign_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    rd = RunDir(run_dir)
    report = rd.report()
    ctx = StepContext(run_dir=run_dir, work_dir=RunLayout(run_dir).step(3, "write_hub_dataset").path, seed=7,
                      extra={"reports": report["steps"], "spec": rd.spec(), "sources": report["sources"]})
    step = HubDatasetWriter.from_params(path=str(out))
    step.run(rd.final(), ctx)
    (out / "thesis.tex").write_text("\\documentclass{article}")
    assert isinstance(step, HubDatasetWriter)
    with pytest.raises(ConfigError, match="holds thesis.tex, which curate did not write there"):
        step.check_target()
    with pytest.raises(ConfigError, match="holds thesis.tex, which curate did not write there"):
        step.run(rd.final(), ctx)
    assert (out / "thesis.tex").exists() and (out / "export.json").exists()


def test_a_file_added_while_exporting_is_never_deleted(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curate.export import atomic

    out = tmp_path / "out"
    export_run(run_dir, out, ExportOptions())
    before = (out / "export.json").read_text()
    real = atomic.check_target

    def check_then_add(folder: Path, overwrite: bool) -> None:
        real(folder, overwrite)
        finished = any(tmp_path.glob(f".out{atomic.TMP_MARK}*/export.json"))
        if folder == out.absolute() and finished:  # the check before the swap passed; the user saves a file now
            (out / "thesis.tex").write_text("\\documentclass{article}")

    monkeypatch.setattr(atomic, "check_target", check_then_add)
    with pytest.raises(ConfigError, match="holds thesis.tex, which curate did not write there"):
        export_run(run_dir, out, ExportOptions(overwrite=True, seed=99))
    assert (out / "thesis.tex").exists() and (out / "export.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_a_stale_old_folder_holding_a_foreign_file_is_kept(run_dir: Path, tmp_path: Path) -> None:
    from curate.export.atomic import OLD_MARK

    out = tmp_path / "out"
    export_run(run_dir, out, ExportOptions())
    old = tmp_path / f".out{OLD_MARK}999999999-abcd"  # a dead pid's leftover, with a user's file in it
    old.mkdir()
    (old / "thesis.tex").write_text("x")
    clean = tmp_path / f".out{OLD_MARK}999999998-abcd"  # a leftover holding only curate's files
    clean.mkdir()
    export_run(run_dir, out, ExportOptions(overwrite=True))
    assert (old / "thesis.tex").exists() and not clean.exists()


def _no_answer_records() -> list[dict]:
    return [
        conv("gpt4all", 0, [("user", "How do I sort a list in Python?"), ("assistant", "Use sorted().")]),
        conv("gpt4all", 1, [("user", "Tell me a joke about cats, please.")]),
        conv("gpt4all", 2, [("system", "Be brief."), ("user", "Name a colour of the sky.")]),
    ]


@pytest.mark.parametrize("fmt", ["hub", "openai", "sharegpt"])
def test_conversations_without_an_assistant_turn_are_counted_and_shown(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / fmt
    run = RunInfo(name="t", spec={**SPEC, "sources": SPEC["sources"][:1]})
    res = export_records(make_batch(_no_answer_records()), out, ExportOptions(fmt=fmt), run)
    assert res.n_exported == 3 and res.no_assistant == 2
    assert json.loads((out / "export.json").read_text())["no_assistant_turn"] == 2
    assert ("warning: 2 exported conversation(s) have no assistant turn, so a trainer has no response to learn "
            "from; they are kept as curated (listed as no_assistant_turn in export.json). Remove them with a "
            "filter in the recipe if the set is for supervised fine-tuning.") in res.summary()
    assert ("2 exported conversations have no assistant turn (`no_assistant_turn` in `export.json`): they hold no "
            "response to train on.") in (out / "README.md").read_text()


def test_pair_formats_skip_them_with_a_reason(tmp_path: Path) -> None:
    out = tmp_path / "alpaca"
    run = RunInfo(name="t", spec={**SPEC, "sources": SPEC["sources"][:1]})
    res = export_records(make_batch(_no_answer_records()), out, ExportOptions(fmt="alpaca"), run)
    assert res.n_exported == 1 and res.no_assistant == 0 and res.skipped == {"ends_with_user": 2}
    assert "no assistant turn" not in res.summary()


def test_every_conversation_answered_means_no_warning(run_dir: Path, tmp_path: Path) -> None:
    res = export_run(run_dir, tmp_path / "out", ExportOptions())
    assert res.no_assistant == 0 and "warning" not in res.summary()
    assert json.loads((tmp_path / "out" / "export.json").read_text())["no_assistant_turn"] == 0


def test_a_dry_run_is_not_exported(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = RunLayout(run_dir).report
    p.write_text(json.dumps({**json.loads(p.read_text()), "dry_run": True}))
    assert main(["export", str(run_dir), str(tmp_path / "out")]) == 2
    assert _err(capsys) == (
        f"error: {run_dir} is a dry run (--dry-run): its filters only measured and nothing was removed, so its "
        "records are not the curated set; run the recipe without --dry-run, then export\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_torn_report_json_is_a_clear_error(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = RunLayout(run_dir).report
    p.write_text(p.read_text()[:50])
    assert main(["export", str(run_dir), str(tmp_path / "out")]) == 2
    assert _err(capsys) == f"error: {p}: unreadable (torn or not JSON); resume the run to write it again\n"
