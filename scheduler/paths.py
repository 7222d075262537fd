"""Output paths, checked before any work is done for them: one sentence for a path that cannot be written."""

from __future__ import annotations

import tempfile
from pathlib import Path

from warpsched.scheduler.errors import InputError


def check_writable_file(path: str | Path, what: str) -> None:
    """An `InputError` unless a file can be written at `path` (its folder exists and takes a new file)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {str(p)!r} is a directory; give the path of a file")
    folder = p.parent
    if not folder.exists():
        raise InputError(f"cannot write {what} {str(p)!r}: the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise InputError(f"cannot write {what} {str(p)!r}: {str(folder)!r} is a file, not a folder")
    _probe(folder, f"cannot write {what} {str(p)!r}")


def check_writable_folder(path: str | Path, what: str) -> Path:
    """`path` as a folder that exists or can be made (it is not made here); an `InputError` otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {str(p)!r} is a file; give a folder")
    existing = next(a for a in (p, *p.absolute().parents) if a.exists())
    if not existing.is_dir():
        raise InputError(f"{what} {str(p)!r} cannot be made: {str(existing)!r} is a file")
    _probe(existing, f"{what} {str(p)!r} cannot be written")
    return p


def _probe(folder: Path, failure: str) -> None:
    """Create and remove a file in `folder`: the one test that also holds for root and read-only mounts."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"{failure}: {exc.strerror or exc} in {str(folder)!r}") from None
