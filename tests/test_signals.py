"""Runs end cleanly whatever ends them: SIGTERM and SIGHUP as SIGINT (temporary folder removed,
exit 128 + signal), and after SIGKILL of the main process its workers and kernels end by
themselves and the next writer removes the temporary folder left behind.

The runs use stand-in notebooks, one of which sleeps, so the signal arrives while kernels run."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cartlib.io import write_example_cohort
from cartlib.outdir import staged_output
from cartlib.processes import Interrupted, termination_signals_raise
from fake_notebooks import recording_body, write_fake_notebooks

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux /proc")
TAG = "CARTLIB_TEST_RUN_TAG"


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_termination_signals_become_exceptions_with_the_exit_status(signo):
    before = signal.getsignal(signo)
    with pytest.raises((Interrupted, KeyboardInterrupt)) as caught:
        with termination_signals_raise():
            os.kill(os.getpid(), signo)
            time.sleep(5)  # the handler raises as soon as the signal is delivered
    if signo == signal.SIGINT:
        assert caught.type is KeyboardInterrupt
    else:
        assert caught.value.exit_status == 128 + signo
    assert signal.getsignal(signo) is before, "handlers are restored"


def _live_processes(tag: str, pgid: int) -> list[str]:
    """Processes (not zombies) in the process group ``pgid`` or carrying ``tag`` in their environment:
    the run's main process, workers, the multiprocessing helpers and the kernels (own sessions)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            environ = (stat.parent / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if state != "Z" and (group == pgid or f"{TAG}={tag}".encode() in environ):
            found.append(f"{stat.parent.name} {(stat.parent / 'cmdline').read_bytes()[:120]!r}")
    return found


def _wait_until_gone(tag: str, pgid: int, seconds: float = 20.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (alive := _live_processes(tag, pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture(scope="module")
def sleeping_suite(tmp_path_factory):
    """Stand-in notebooks where 00_cohort writes a marker file and then sleeps for minutes."""
    tmp = tmp_path_factory.mktemp("signals")
    marker = tmp / "kernel-started"
    body = recording_body("00_cohort") + f"\nimport pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(600)"
    nbs = write_fake_notebooks(tmp / "nbs", {"00_cohort": body})
    return nbs, write_example_cohort(tmp / "cohort"), marker


def _start_run(sleeping_suite, out: Path, tag: str) -> subprocess.Popen:
    nbs, data, marker = sleeping_suite
    marker.unlink(missing_ok=True)
    env = {**os.environ, "CARTLIB_NOTEBOOKS": str(nbs), TAG: tag}
    proc = subprocess.Popen([sys.executable, "-m", "cartlib.cli", "run", "--quiet", "--workers", "2",
                             "--data", str(data), "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sleeping notebook never started"
        time.sleep(0.2)
    return proc


def _previous_report(folder: Path) -> dict:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"cartlib": "0.0.1"}), encoding="utf-8")
    (folder / "results.json").write_text('{"old": 1}', encoding="utf-8")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_sigterm_removes_the_partial_keeps_the_previous_report_and_leaves_no_process(sleeping_suite, tmp_path):
    out = tmp_path / "report"
    before = _previous_report(out)
    tag = uuid.uuid4().hex
    proc = _start_run(sleeping_suite, out, tag)
    assert any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)  # returns only once nothing holds the pipes open
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip() == "cartlib run: stopped by SIGTERM; the output folder was left as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"], "no .partial, no lock file"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _wait_until_gone(tag, proc.pid, 10) == [], "workers and kernels end with the run"


def test_after_sigkill_the_workers_and_kernels_end_and_the_next_run_cleans_up(sleeping_suite, tmp_path):
    out = tmp_path / "report"
    tag = uuid.uuid4().hex
    proc = _start_run(sleeping_suite, out, tag)
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: only the workers' watch can clean up
    proc.communicate(timeout=60)
    assert _wait_until_gone(tag, proc.pid) == [], "no orphan keeps executing notebooks"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert leftovers and all(f".{proc.pid}." in name for name in leftovers)
    with staged_output(out) as tmp:  # the next writer of the same target
        (tmp / "manifest.json").write_text('{"cartlib": "0"}', encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
