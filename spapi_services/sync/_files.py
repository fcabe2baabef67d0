"""Files only their owner can read: how the mirror's files and folders are made.

A mirror holds buyers' names, phones and addresses, so every file and folder the sync
creates is private from its first byte: created with mode 0600 (folders 0700) by the
call that creates it, never loosened by the umask and never tightened afterwards with a
``chmod`` (which would leave a moment when others could open it).  A file that already
exists keeps its mode: the user chose it, and changing it behind their back would be
worse than saying so, which :func:`warn_if_shared` does once per file and process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from pathlib import Path

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "create_private",
    "make_private_folders",
    "private_opener",
    "replace_private",
    "warn_if_shared",
]

_log = logging.getLogger("spapi_services.sync")

#: Read and write for the owner, nothing for anyone else.
FILE_MODE = 0o600
#: The same for folders (with the right to enter them).
FOLDER_MODE = 0o700

_warned: set[str] = set()
_warned_lock = threading.Lock()


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """An ``opener`` for :func:`open` that creates a missing file with mode 0600."""
    return os.open(path, flags, FILE_MODE)


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist; whether it was created.

    ``O_EXCL`` makes the creation and the mode one step: if another process made the file
    first, its file is left alone.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def make_private_folders(folder: Path) -> None:
    """Create ``folder`` and any missing parents, each with mode 0700.

    ``Path.mkdir(parents=True)`` gives the parents the umask's mode, so each missing
    level is made here, outermost first.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else
            level.mkdir(mode=FOLDER_MODE)


def replace_private(path: Path, data: bytes, *, durable: bool) -> None:
    """Replace ``path`` atomically with ``data``, in a new file of mode 0600.

    The data goes to a temporary file beside ``path`` first (``O_EXCL``: a temporary
    file left by a crash, whatever its mode, is removed rather than written through),
    then is renamed over it.  With ``durable``, the file and the folder's entry are
    flushed to the disk.
    """
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    if durable:
        sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to the disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - filesystems that refuse it
        pass
    finally:
        os.close(fd)


def warn_if_shared(path: Path, holds: str = "buyers' personal data") -> None:
    """Log a warning, once per file and process, if others may read or write ``path``.

    The file's mode is left as it is.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    key = str(path.resolve())
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    _log.warning(
        "%s is open to other users of this machine (mode %04o) and holds %s; "
        "make it private with: chmod 600 %s",
        path,
        mode,
        holds,
        path,
    )
