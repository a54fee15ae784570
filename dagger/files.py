"""Writing files so that a kill at any instant leaves either the old file or the new one, never half of one.

Every file the project rewrites (run outputs, checkpoints, reports, shipped experts) goes through
`atomic_write`: the content is written to a hidden temporary sibling, flushed to disk, and renamed
over the target. The temporary name is fixed (`.<stem>.tmp<suffix>`), which is safe because one run
folder has one writer (see `dagger.runs`), and keeps the suffix so writers that choose a format by
extension (numpy, matplotlib) still work.
"""
from __future__ import annotations

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
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


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
