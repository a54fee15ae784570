"""Writing files so that a kill at any instant leaves either the old file or the new one, never half of one.

Every file the project rewrites (run outputs, checkpoints, reports, shipped experts) goes through
`atomic_write`: the content is written to a hidden temporary sibling, flushed to disk, and renamed
over the target. The temporary name is fixed (`.<stem>.tmp<suffix>`), which is safe because one run
folder has one writer (see `dagger.runs`), and keeps the suffix so writers that choose a format by
extension (numpy, matplotlib) still work.
"""
from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path


def temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` to produce the new content at a temporary path, then move it over `path`."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        try:
            write(tmp)
        except RuntimeError as err:  # torch's writer says only "unexpected pos" when a write stops short
            if "unexpected pos" not in str(err):
                raise
            raise short_write(path) from None
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


LOW_SPACE = 16 * 2**20  # bytes left on a filesystem that a write stopped short on: it is full


def short_write(path: Path) -> OSError:
    """Why a write of `path` stopped short, as the OSError the system would have raised: a full disk, or else a
    file-size limit."""
    try:
        stats = os.statvfs(path.parent)
        full = stats.f_bavail * stats.f_frsize < LOW_SPACE
    except OSError:
        full = True
    if full:
        return OSError(errno.ENOSPC, "No space left on device", str(path))
    return OSError(errno.EFBIG, "File too large (a file-size limit stopped the write)", str(path))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def existing_folders(argv: list[str], keys: tuple[str, ...]) -> set[Path]:
    """The folders that command-line overrides `key=folder` (of `keys`) name and that exist already: Hydra makes
    them before the command's checks run, so a refused command must know which ones it may remove."""
    found = set()
    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key in keys and value and "${" not in value and Path(value).expanduser().is_dir():
            found.add(Path(value).expanduser().resolve())
    return found
