"""Where a command may write its output folder, and how the folder is replaced atomically.

Every command that writes a folder (``cartlib run --out``, ``cartlib synth --out``) goes
through :func:`staged_output`. The rules, one small function each:

* never, whatever the flags: a path that is a file; the filesystem root; the home folder or a
  folder holding it; the working directory or a folder holding it; a repository root (a folder
  holding ``.git``); a folder that is, holds or lies inside an input folder, or that is or
  holds the folder of an input file (an ``.xlsx`` workbook, a parameter file);
* without ``--force`` (``--overwrite`` for ``synth``): only a folder that is absent, empty or
  the command's own earlier output (a report is recognised by its ``manifest.json``);
* the output is written into a temporary folder beside the target, named
  ``.<name>.<pid>.<token>.partial``, created with the user's usual permissions (umask), and
  renamed into place only when complete, so a failed or interrupted run leaves the previous
  folder as it was;
* one writer per target at a time: a lock file ``.<name>.lock`` beside the target
  (``flock``); a second writer is refused at once with a message naming the first;
* temporary folders of runs that died (their pid no longer alive) are removed by the next
  writer of the same target.

A folder beside an input workbook (``--data site/cohort.xlsx --out site/reports/x``) is
allowed: only the workbook's folder itself and the folders above it are protected. The
mechanics of the atomic write (names, lock, replace) are in :mod:`cartlib.atomic`.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .atomic import LockHeld, make_partial, output_lock, remove_stale_partials, replace_folder

# What a report folder written by ``cartlib run`` holds; a folder with anything else in it
# is not (only) a report, so replacing it needs --force.
REPORT_ENTRIES = frozenset({"manifest.json", "results.json", "report.html", "notebooks", "logs", "figures",
                            "report.docx"})
# Files that file managers and JupyterLab add by themselves when a user opens a folder.
HOUSEKEEPING_ENTRIES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints"})


class PathError(ValueError):
    """A path given by the user cannot be used; the message is one line naming it."""


class OutputFolderBusy(PathError):
    """Another process is writing the same output folder."""


def shown(path: str | os.PathLike) -> str:
    """``path`` as printable text, with undecodable bytes shown as escapes.

    >>> shown("/tmp/a\\udcff")
    '/tmp/a\\\\udcff'
    """
    return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")


def check_encodable(path: str | os.PathLike, what: str) -> None:
    """Refuse a path that is not valid UTF-8 (the notebooks and the report need text).

    >>> check_encodable("/tmp/ok", "--out")
    >>> check_encodable("/tmp/bad\\udcff", "--out")
    Traceback (most recent call last):
    ...
    cartlib.outdir.PathError: --out /tmp/bad\\udcff: the path is not valid UTF-8; rename it
    """
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise PathError(f"{what} {shown(path)}: the path is not valid UTF-8; rename it") from None


def resolve_path(path: str | os.PathLike, what: str, must_exist: bool = False) -> Path:
    """The absolute, symlink-free form of a path given by the user.

    Parameters
    ----------
    path : str or os.PathLike
        As typed; ``~`` is expanded.
    what : str
        How the message names it, e.g. ``"--data"``.
    must_exist : bool, default False
        Refuse a path that does not exist.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    PathError
        Not valid UTF-8, a symbolic link loop, or absent although ``must_exist``.

    Examples
    --------
    >>> resolve_path("/", "--out")
    PosixPath('/')
    >>> resolve_path("/no/such/cohort", "--data", must_exist=True)
    Traceback (most recent call last):
    ...
    cartlib.outdir.PathError: --data /no/such/cohort does not exist
    """
    check_encodable(path, what)
    try:
        resolved = Path(path).expanduser().resolve(strict=must_exist)
    except FileNotFoundError:
        raise PathError(f"{what} {shown(path)} does not exist") from None
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise PathError(f"{what} {shown(path)}: symbolic link loop") from None
    except OSError as exc:
        problem = "symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise PathError(f"{what} {shown(path)}: {problem}") from None
    return resolved


def is_within(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (both resolved).

    >>> is_within(Path("/a/b/c"), Path("/a/b")), is_within(Path("/a/b"), Path("/a/b/c"))
    (True, False)
    """
    return path == folder or folder in path.parents


def is_filesystem_root(path: Path) -> bool:
    """True for ``/`` (or a drive root).

    >>> is_filesystem_root(Path("/")), is_filesystem_root(Path("/tmp"))
    (True, False)
    """
    return path.parent == path


def is_repository_root(path: Path) -> bool:
    """True for a folder holding ``.git`` (a folder, or a file in worktrees and submodules)."""
    return os.path.lexists(path / ".git")


def is_empty_folder(path: Path) -> bool:
    """True for an existing folder with nothing in it."""
    return path.is_dir() and next(path.iterdir(), None) is None


def is_cartlib_report(path: Path) -> bool:
    """True for a folder written by ``cartlib run``: its ``manifest.json`` carries the
    ``cartlib`` version, and it holds nothing but what a run writes.

    >>> import tempfile, json
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "manifest.json").write_text(json.dumps({"cartlib": "0.1.0"}))
    >>> is_cartlib_report(d)
    True
    >>> _ = (d / "thesis.docx").write_text("mine")
    >>> is_cartlib_report(d)
    False
    """
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        names = {p.name for p in path.iterdir()}
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and isinstance(manifest.get("cartlib"), str)
            and names <= REPORT_ENTRIES | HOUSEKEEPING_ENTRIES)


def never_reason(target: Path, inputs: Sequence[Path] = ()) -> str | None:
    """Why ``target`` may never be an output folder, even with --force.

    Parameters
    ----------
    target : pathlib.Path
        The resolved output folder.
    inputs : sequence of pathlib.Path
        Resolved input paths. For an input folder, the target may not be the folder, a
        folder above it or a folder inside it; for an input file, it may not be the file's
        folder or a folder above it.

    Returns
    -------
    str or None
        The reason, to follow "refusing to write into <target>: "; None if allowed.

    Examples
    --------
    >>> import tempfile
    >>> never_reason(Path("/"))
    'it is the filesystem root'
    >>> cohort = Path(tempfile.mkdtemp()) / "cohort"
    >>> cohort.mkdir()
    >>> never_reason(cohort / "report", [cohort]).startswith("it lies inside the input")
    True
    >>> never_reason(cohort.parent / "reports" / "x", [cohort]) is None
    True
    """
    if target.exists() and not target.is_dir():
        return "it is a file, not a folder"
    if is_filesystem_root(target):
        return "it is the filesystem root"
    home = Path.home().resolve()
    if is_within(home, target):
        return "it is your home folder" if home == target else f"it holds your home folder {shown(home)}"
    cwd = Path.cwd().resolve()
    if is_within(cwd, target):
        return "it is the working directory" if cwd == target else f"it holds the working directory {shown(cwd)}"
    if is_repository_root(target):
        return "it is a repository root (it holds .git)"
    for source in inputs:
        reason = input_overlap(target, source)
        if reason:
            return reason
    return None


def input_overlap(target: Path, source: Path) -> str | None:
    """Why writing ``target`` would touch the input ``source`` (a folder or a file), or None."""
    if source.is_dir():
        if target == source:
            return f"it is the input folder {shown(source)}"
        if is_within(source, target):
            return f"it holds the input {shown(source)}"
        if is_within(target, source):
            return f"it lies inside the input {shown(source)}"
        return None
    if is_within(source.parent, target):
        return f"it holds the input {shown(source)}"
    return None


def check_output_folder(target: Path, *, inputs: Sequence[Path] = (), force: bool = False,
                        is_own: Callable[[Path], bool] | None = is_cartlib_report,
                        force_flag: str = "--force") -> None:
    """Apply every rule to the resolved ``target``; writes nothing.

    Parameters
    ----------
    target : pathlib.Path
        The resolved output folder.
    inputs : sequence of pathlib.Path
        Resolved input paths (see :func:`never_reason`).
    force : bool, default False
        Allow replacing a folder that holds other files (``--force``).
    is_own : callable or None, default :func:`is_cartlib_report`
        Recognises the command's own earlier output, which may be replaced without
        ``force``; None recognises nothing.
    force_flag : str, default "--force"
        The option the message tells the user about.

    Raises
    ------
    PathError
        One line naming the folder and the reason.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> check_output_folder(d / "new")                    # absent: allowed
    >>> _ = (d / "notes.txt").write_text("mine")
    >>> check_output_folder(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cartlib.outdir.PathError: refusing to write into ...: it is not empty and is not a cartlib report (it holds notes.txt); choose another folder or pass --force to replace it
    """
    reason = never_reason(target, inputs)
    if reason:
        raise PathError(f"refusing to write into {shown(target)}: {reason}")
    if force or not target.exists() or is_empty_folder(target) or (is_own is not None and is_own(target)):
        return
    kind = "is not empty and is not a cartlib report" if is_own is is_cartlib_report else "is not empty"
    names = sorted(p.name for p in target.iterdir())
    examples = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    raise PathError(f"refusing to write into {shown(target)}: it {kind} (it holds {shown(examples)}); "
                    f"choose another folder or pass {force_flag} to replace it")


def check_output(target: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = (), force: bool = False,
                 is_own: Callable[[Path], bool] | None = is_cartlib_report, force_flag: str = "--force",
                 what: str = "--out") -> tuple[Path, list[Path]]:
    """Resolve ``target`` and ``inputs`` and apply the rules, writing nothing.

    Lets a command refuse a bad ``--out`` before its long work starts (:func:`staged_output`
    checks again before writing). Parameters as :func:`staged_output`.

    Returns
    -------
    (pathlib.Path, list of pathlib.Path)
        ``target`` and ``inputs``, resolved.

    Raises
    ------
    PathError
        A path is unusable or the rules refuse ``target``.

    Examples
    --------
    >>> check_output("/", what="--out")
    Traceback (most recent call last):
    ...
    cartlib.outdir.PathError: refusing to write into /: it is the filesystem root
    """
    resolved = resolve_path(target, what)
    protected = [resolve_path(p, "input", must_exist=True) for p in inputs]
    check_output_folder(resolved, inputs=protected, force=force, is_own=is_own, force_flag=force_flag)
    return resolved, protected


def make_parent(target: Path, what: str) -> None:
    """Create the folders above ``target``; a one-line error when that is impossible."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(f"{what} {shown(target)}: cannot create {shown(exc.filename or target.parent)}: "
                        f"{exc.strerror or exc}") from None
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise PathError(f"{what} {shown(target)}: cannot write in {shown(target.parent)}: permission denied")


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    try:
        with output_lock(target):
            yield
    except LockHeld as exc:
        raise OutputFolderBusy(f"another cartlib process (pid {exc.holder}) is writing {shown(target)}; "
                               "wait for it to finish or choose another --out") from None


@contextlib.contextmanager
def staged_output(target: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = (), force: bool = False,
                  is_own: Callable[[Path], bool] | None = is_cartlib_report, force_flag: str = "--force",
                  what: str = "--out") -> Iterator[Path]:
    """Check the rules, lock ``target`` and yield an empty temporary folder beside it.

    When the block ends normally the folder replaces ``target`` (:func:`replace_folder`);
    when it raises (an error, Ctrl-C, a signal turned into an exception) the folder is
    removed and ``target`` is left as it was.

    Parameters
    ----------
    target : str or os.PathLike
        The output folder.
    inputs : sequence of str or os.PathLike
        The command's inputs (data, parameter file), protected as :func:`never_reason` says.
    force : bool, default False
        Replace a folder that holds other files.
    is_own : callable or None, default :func:`is_cartlib_report`
        Recognises the command's own earlier output; None recognises nothing.
    force_flag : str, default "--force"
        The option named in the refusal.
    what : str, default "--out"
        How messages name ``target``.

    Yields
    ------
    pathlib.Path
        The temporary folder to fill (the user's usual permissions).

    Raises
    ------
    PathError
        The rules refuse ``target`` or its parent cannot be created.
    OutputFolderBusy
        Another process is writing ``target``.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "report"
    >>> with staged_output(out) as tmp:
    ...     _ = (tmp / "manifest.json").write_text('{"cartlib": "0"}')
    >>> sorted(p.name for p in out.parent.iterdir())
    ['report']
    """
    target, protected = check_output(target, inputs=inputs, force=force, is_own=is_own,
                                     force_flag=force_flag, what=what)
    make_parent(target, what)
    with _exclusive(target):
        remove_stale_partials(target)
        # checked again under the lock: another writer may have finished in the meantime
        check_output_folder(target, inputs=protected, force=force, is_own=is_own, force_flag=force_flag)
        tmp = make_partial(target)
        try:
            yield tmp
            replace_folder(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
