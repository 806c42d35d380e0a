"""The one real `cartlib run` of the bundled cohort that several test modules read (end to end,
the browser check, the Word file): run once per session by the ``e2e_run`` fixture of conftest.py.

The cohort is a copy of the bundled one in a folder whose name is hostile (blank lines, a Markdown
javascript: link and a remote image), and the run starts from another folder than the repository,
with ``--docx``: the report must show the name as text, load nothing, run nothing, and the Word
tables are written beside it."""
import shutil
import subprocess
import sys
from pathlib import Path

from cartlib.analysis import DEFAULT_COHORT

HOSTILE_NAME = "cohort\n\n[click](javascript:alert(1))\n\n![t](http://127.0.0.1:9/x.png)"


def run_bundled(tmp: Path) -> Path:
    """Run ``cartlib run --docx`` on a hostile-named copy of the bundled cohort; returns the report folder."""
    data = tmp / HOSTILE_NAME
    shutil.copytree(DEFAULT_COHORT, data)
    out = tmp / "report"
    proc = subprocess.run([str(Path(sys.executable).with_name("cartlib")), "run", "--quiet", "--docx", "--data",
                           str(data), "--out", str(out)], capture_output=True, text=True, timeout=1200, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
