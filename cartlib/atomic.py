"""Writing a folder atomically: a temporary folder beside the target, renamed into place.

Used by :func:`cartlib.outdir.staged_output`, which adds the rules about which folders may
be written. Temporary folders are named ``.<target name>.<pid>.<token>.partial`` (``.old``
for a previous folder being removed), so the pid tells whether their writer is still alive;
a lock file ``.<target name>.lock`` beside the target lets one writer in at a time.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


class LockHeld(RuntimeError):
    """Another process holds the lock; ``holder`` is its pid as written in the lock file."""

    def __init__(self, lock: Path, holder: str):
        self.lock, self.holder = lock, holder
        super().__init__(f"{lock} is held by process {holder}")


# -- temporary folders ---------------------------------------------------------------------

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]+\.(?:partial|old)$")


def temp_sibling(target: Path, kind: str) -> Path:
    """A fresh name beside ``target`` for a ``partial`` (being written) or ``old`` folder."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, then renamed over it,
    so ``path`` is the old file or the complete new one, never a half-written one.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_file(Path(d) / "a" / "x.txt", b"hi")
    ...     sorted(p.name for p in (Path(d) / "a").iterdir()), (Path(d) / "a" / "x.txt").read_bytes()
    (['x.txt'], b'hi')
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path, "partial")
    # os.open with 0o666 lets the user's umask decide the mode, as for any file they create
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_partial(target: Path) -> Path:
    """Create the temporary folder beside ``target`` with the user's usual permissions."""
    tmp = temp_sibling(target, "partial")
    os.mkdir(tmp, 0o777)  # the umask applies, as for any folder the user makes
    return tmp


def process_alive(pid: int) -> bool:
    """True if a process with this id exists (possibly another user's).

    >>> process_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove the temporary folders left beside ``target`` by writers no longer alive.

    Only folders named ``.<target name>.<pid>.<token>.partial`` (or ``.old``) whose pid is
    not a running process are removed; the caller holds the target's lock.

    Returns
    -------
    list of pathlib.Path
        The folders removed.
    """
    removed = []
    for entry in target.parent.iterdir():
        m = _TEMP_NAME.match(entry.name)
        if m and m["name"] == target.name and not process_alive(int(m["pid"])) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


# -- replacing the target --------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h


def swap_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``).

    Returns False, having changed nothing, where the C library or file system lacks it.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_text("A"); _ = (d / "b").write_text("B")
    >>> swapped = swap_paths(d / "a", d / "b")
    >>> (d / "a").read_text() == ("B" if swapped else "A")
    True
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # old kernel or a file system without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target``; an existing ``target`` is swapped out and removed.

    At no moment is ``target`` half-written: either the old or the new folder has its name
    (one ``renameat2`` exchange on Linux; elsewhere two renames, undone if the second fails).

    Parameters
    ----------
    new : pathlib.Path
        The complete folder, beside ``target``.
    target : pathlib.Path
        Where it goes.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "new").mkdir(); (d / "old").mkdir(); _ = (d / "new" / "a").write_text("1")
    >>> replace_folder(d / "new", d / "old")
    >>> [p.name for p in d.iterdir()], (d / "old" / "a").read_text()
    (['old'], '1')
    """
    if not os.path.lexists(target):
        os.rename(new, target)
        return
    if swap_paths(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the previous folder
        return
    old = temp_sibling(target, "old")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- one writer at a time --------------------------------------------------------------------

@contextlib.contextmanager
def output_lock(target: Path) -> Iterator[Path]:
    """Hold the lock file ``.<name>.lock`` beside ``target`` (``flock``) for the block.

    The file holds the holder's pid and is removed on release; a holder checks that the file
    it locked is still the one at the path, so the removal never lets two writers in. The
    lock ends with its process, however that ends.

    Raises
    ------
    LockHeld
        Another process holds it.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "report"
    >>> with output_lock(target) as lock:
    ...     lock.name
    '.report.lock'
    """
    lock = target.with_name(f".{target.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(lock, holder) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file between our open and flock
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)
