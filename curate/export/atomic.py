"""Write an output folder all at once: into a temp folder beside it, renamed into place at the end.

A killed export leaves only a hidden ``.<name>.curate-tmp-<pid>-<rand>`` folder beside OUT_DIR,
never a half-written OUT_DIR; the next export to the same place removes such folders whose
process is gone. An existing OUT_DIR is replaced only with ``overwrite`` and only when it is a
curate export (it holds ``export.json``) or empty, so a typo can never delete a run or a home folder.
"""

from __future__ import annotations

import contextlib
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
            if mark == OLD_MARK and not out.exists():
                continue  # the rename into place never happened: keep the previous export for the user
            stale.append(p)
    return stale


def check_target(out: Path, overwrite: bool) -> None:
    """Fail before any work when ``out`` cannot be written. Raises ConfigError."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is a file; choose another output folder")
    if out.is_dir():
        if not overwrite:
            raise ConfigError(f"{out} already exists; pass --overwrite to replace it, or choose another folder")
        if any(out.iterdir()) and not (out / MANIFEST).exists():
            raise ConfigError(
                f"{out} exists and is not a curate export (no {MANIFEST}); refusing to replace it even with "
                "--overwrite. Choose an empty or new folder."
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
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
