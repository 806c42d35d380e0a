"""Processes that end with the run, whatever ends it.

The main process turns SIGTERM and SIGHUP (what ``kill``, ``timeout``, job schedulers and a
closed terminal send) into :class:`Interrupted`, as Python turns SIGINT into
``KeyboardInterrupt``, so the same clean-up runs for all three. Worker processes ignore
SIGINT (the main process stops them), and a thread in each worker ends it, with its
kernels, when the main process is gone (even killed outright with SIGKILL) or sets the
shared ``stop`` event.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

WATCH_INTERVAL_S = 0.25  # how often a worker checks that the main process is still there
TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """The run was asked to stop by a signal; ``exit_status`` is 128 + the signal number.

    >>> Interrupted(signal.SIGTERM).exit_status
    143
    """

    def __init__(self, signo: int):
        self.signo = signo
        self.exit_status = 128 + signo
        super().__init__(f"stopped by {signal.Signals(signo).name}")


def _raise_interrupted(signo: int, frame) -> None:
    # one clean-up at a time: further signals are ignored while the first is being handled
    for other in (*TERMINATION_SIGNALS, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    if signo == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signo)


@contextlib.contextmanager
def termination_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` and SIGINT raises
    ``KeyboardInterrupt``; a second signal during the clean-up is ignored.

    >>> with termination_signals_raise():
    ...     signal.getsignal(signal.SIGTERM) is _raise_interrupted
    True
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    handled = (*TERMINATION_SIGNALS, signal.SIGINT)
    previous = {s: signal.getsignal(s) for s in handled}
    for s in handled:
        signal.signal(s, _raise_interrupted)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def end_with_parent(stop, parent_pid: int) -> None:
    """In a worker process: ignore SIGINT, end on SIGTERM/SIGHUP, and end when the process
    ``parent_pid`` is gone or ``stop`` (a multiprocessing Event) is set; in every case the
    worker's own child processes (its kernels) are killed first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the main process stops us
    for signo in TERMINATION_SIGNALS:
        signal.signal(signo, end_worker)
    threading.Thread(target=watch_parent, args=(stop, parent_pid), name="cartlib-watch", daemon=True).start()


def watch_parent(stop, parent_pid: int) -> None:
    """Worker thread: return only by ending the worker, once the parent died or said stop."""
    with contextlib.suppress(Exception):
        while not stop.wait(WATCH_INTERVAL_S) and os.getppid() == parent_pid:
            pass
    end_worker()


def end_worker(signo: int = signal.SIGTERM, frame=None) -> None:
    """Kill this process's children (Jupyter starts each kernel in a session of its own, so no
    signal to the run's process group reaches them) and exit at once with 128 + ``signo``."""
    for pid in child_pids():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    os._exit(128 + signo)


def child_pids() -> list[int]:
    """This process's children, from Linux ``/proc`` (elsewhere none are found, and a kernel
    ends by itself about a second after its worker, through ipykernel's parent poller).

    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> child.pid in child_pids() or not Path("/proc/self/task").exists()
    True
    >>> child.kill(); _ = child.wait()
    """
    pids = []
    for listing in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in listing.read_text().split()]
    return pids


def redirect_output(log: str | None) -> None:
    """Send this process's stdout and stderr (inherited by its kernels) to the file ``log``
    (or nowhere): kernel chatter stays out of the user's terminal, and no kernel holds the
    caller's stdout open."""
    fd = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
