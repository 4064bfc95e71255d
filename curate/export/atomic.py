"""Write an output folder all at once: into a temp folder beside it, renamed into place at the end.

A killed export leaves only a hidden ``.<name>.curate-tmp-<pid>-<rand>`` folder beside OUT_DIR,
never a half-written OUT_DIR; the next export to the same place removes such folders whose
process is gone. An existing OUT_DIR is replaced only with ``overwrite`` and only when it is empty
or curate's own ``export.json`` proves that curate wrote everything in it: each file in the folder
must be listed there with its size. One file that is not (a ``thesis.tex`` put beside an export, a
README edited by hand, a folder with another tool's ``export.json``) and the folder is refused, so
overwriting never deletes a file curate did not write.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from curate.errors import ConfigError

MANIFEST = "export.json"
TMP_MARK = ".curate-tmp-"
OLD_MARK = ".curate-old-"
# Test hook: seconds to sleep after the first data file, so a test can kill the export mid-way.
PAUSE_ENV = "CURATE_EXPORT_PAUSE_AFTER_FIRST_FILE_S"


def pause_for_tests() -> None:
    """Sleep if the test hook asks for it (a no-op in normal use)."""
    delay = os.environ.get(PAUSE_ENV)
    if delay:
        time.sleep(float(delay))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_siblings(out: Path) -> list[Path]:
    """Temp folders of earlier exports to ``out`` whose process has ended."""
    stale = []
    for mark in (TMP_MARK, OLD_MARK):
        for p in out.parent.glob(f".{out.name}{mark}*"):
            pid_text = p.name[len(f".{out.name}{mark}") :].split("-", 1)[0]
            if not pid_text.isdigit():
                continue  # not ours
            pid = int(pid_text)
            if pid != os.getpid() and _pid_alive(pid):
                continue  # another export to the same folder is running
            if mark == OLD_MARK:
                if not out.exists():
                    continue  # the rename into place never happened: keep the previous export for the user
                try:
                    check_target(p, overwrite=True)
                except ConfigError:
                    continue  # holds something curate did not write: never deleted
            stale.append(p)
    return stale


def written_files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (relative POSIX path -> size): what export.json lists as written."""
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(folder).as_posix()] = p.stat().st_size
    return dict(sorted(out.items()))


def _listed_files(out: Path) -> dict[str, int | None]:
    """The files export.json in ``out`` says curate wrote (path -> size; None: size not recorded).

    Raises ConfigError when export.json is not curate's (unreadable, not a curate export, no file list).
    """
    marker = out / MANIFEST
    refuse = f"{out} holds {MANIFEST}, but it is not a curate export marker"
    if marker.is_symlink() or not marker.is_file():
        raise ConfigError(f"{refuse} ({MANIFEST} is not a plain file); refusing to replace the folder")
    try:
        m = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{refuse} (unreadable: {e}); refusing to replace the folder") from None
    if not isinstance(m, dict) or not isinstance(m.get("curate_export"), int):
        raise ConfigError(f"{refuse} (no curate_export version); refusing to replace the folder")
    files = m.get("files")
    if isinstance(files, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in files.items()
    ):
        return dict(files)
    splits = m.get("splits")
    if m["curate_export"] == 1 and isinstance(splits, dict):
        # written before export.json listed its files: the split files it names, and the fixed names
        listed: dict[str, int | None] = {n: None for n in ("README.md", "skipped.jsonl", "dataset_info.json")}
        for split in splits.values():
            for f in (split.get("files") or []) if isinstance(split, dict) else []:
                if isinstance(f, str):
                    listed[f] = None
        return listed
    raise ConfigError(f"{refuse} (it lists no files); refusing to replace the folder")


def foreign_entry(out: Path) -> str | None:
    """The first thing in ``out`` curate did not write there (a description), or None.

    ``out`` must hold a curate export.json; every file must be listed in it with its size, and every
    folder must hold a listed file. Raises ConfigError when export.json is not curate's.
    """
    listed = _listed_files(out)
    folders = {str(Path(f).parent.as_posix()) for f in listed} - {"."}
    folders |= {p.as_posix() for f in folders for p in Path(f).parents if str(p) != "."}
    for dirpath, dirs, files in os.walk(out):
        base = Path(dirpath)
        for name in sorted(dirs):
            p = base / name
            rel = p.relative_to(out).as_posix()
            if p.is_symlink() or rel not in folders:
                return f"{rel}/"
        for name in sorted(files):
            p = base / name
            rel = p.relative_to(out).as_posix()
            if rel == MANIFEST:
                continue
            if rel not in listed or p.is_symlink() or not p.is_file():
                return rel
            size = listed[rel]
            if size is not None and p.stat().st_size != size:
                return f"{rel} (changed since curate wrote it: {p.stat().st_size:,} bytes, {size:,} written)"
    return None


def check_target(out: Path, overwrite: bool) -> None:
    """Fail before any work when ``out`` cannot be written. Raises ConfigError."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is a file; choose another output folder")
    if out.is_dir():
        if not overwrite:
            raise ConfigError(f"{out} already exists; pass --overwrite to replace it, or choose another folder")
        if not any(out.iterdir()):
            return
        if not (out / MANIFEST).exists():
            raise ConfigError(
                f"{out} exists and is not a curate export (no {MANIFEST}); refusing to replace it even with "
                "--overwrite. Choose an empty or new folder."
            )
        foreign = foreign_entry(out)
        if foreign is not None:
            raise ConfigError(
                f"{out} holds {foreign}, which curate did not write there (not in its {MANIFEST}); refusing to "
                "replace the folder even with overwrite. Move it out, or choose another folder."
            )


@contextlib.contextmanager
def atomic_output_dir(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temp folder to fill; on success it becomes ``out``, on any error it is removed."""
    out = out.absolute()
    check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    for p in stale_siblings(out):
        shutil.rmtree(p, ignore_errors=True)
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp = out.parent / f".{out.name}{TMP_MARK}{tag}"
    tmp.mkdir()
    try:
        yield tmp
        check_target(out, overwrite)  # someone may have created it meanwhile
        if out.exists():
            old = out.parent / f".{out.name}{OLD_MARK}{tag}"
            os.replace(out, old)
            try:  # checked again once nobody can add to it under its name: only then is it deleted
                check_target(old, overwrite)
            except ConfigError:
                os.replace(old, out)
                check_target(out, overwrite)  # the same refusal, naming the folder the user knows
                raise
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
