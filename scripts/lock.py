"""make lock: re-resolve requirements.lock to the newest versions pyproject.toml allows, and pin
environment.yml to the same versions.

The lock covers the runtime dependencies, the ``test`` extra and the build backend (so ``make
setup`` installs cartlib itself without fetching anything unpinned), for CPython 3.11 on
x86-64 Linux, with the SHA-256 of every file PyPI has for each pinned release. The resolver
(uv, a pinned version) is installed into a throwaway virtual environment, never into .venv.
Only the Python standard library is used here, so this runs before any environment exists.

After a refresh: ``make setup`` (installs the new pins), ``make notebooks`` (the committed
outputs are re-made with them), ``make test``; commit the lock, environment.yml and notebooks together.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
RESOLVER = "uv==0.13.9"
# 3.11.5 rather than 3.11: some pinned releases (soupsieve 4.1) declare Requires-Python >= 3.11.5
PYTHON_VERSION = "3.11.5"
PLATFORM = "x86_64-unknown-linux-gnu"
# conda-forge splits some packages: "-base"/"-core" is the PyPI package without GUI or pandoc extras
CONDA_FORGE_NAME = {"matplotlib": "matplotlib-base", "nbconvert": "nbconvert-core"}


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level_requirements(pyproject: dict) -> list[str]:
    """What the lock is resolved from: runtime, the test extra and the build backend."""
    project = pyproject["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"] + pyproject["build-system"]["requires"]


def locked_versions(lock_text: str) -> dict[str, str]:
    """``name==version`` lines of a pip requirements file, by canonical name."""
    return {canonical(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock_text, re.M)}


def environment_yml(pyproject: dict, pins: dict[str, str]) -> str:
    lines = [
        "# Conda environment for cartlib: the versions of requirements.lock (written by make lock,",
        "# checked by tests/test_packaging.py). conda-forge names; cartlib itself comes from pip.",
        "name: cartlib",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python>={PYTHON_VERSION},<3.12",
    ]
    for req in top_level_requirements(pyproject):
        name = canonical(re.match(r"[A-Za-z0-9._-]+", req)[0])
        lines.append(f"  - {CONDA_FORGE_NAME.get(name, name)}=={pins[name]}")
    lines += ["  - pip", "  - pip:", "      - -e .", ""]
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    # --keep: resolve only what pyproject.toml added since the last lock; every existing pin that
    # still satisfies it stays (uv prefers the versions already in its output file)
    keep = "--keep" in (sys.argv[1:] if argv is None else argv)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="cartlib-lock-") as tmp:
        venv.create(tmp, with_pip=True)
        subprocess.run([f"{tmp}/bin/python", "-m", "pip", "install", "--quiet", RESOLVER], check=True)
        resolved = Path(tmp) / "requirements.lock"
        if keep:
            resolved.write_bytes(LOCK.read_bytes())
        subprocess.run(
            [f"{tmp}/bin/uv", "pip", "compile", "pyproject.toml", "-", "--extra", "test",
             *([] if keep else ["--upgrade"]),
             "--generate-hashes", "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM,
             "--custom-compile-command", "make lock", "--quiet", "--output-file", str(resolved)],
            # the build backend is not a project dependency: it is handed in on stdin
            input="\n".join(pyproject["build-system"]["requires"]), text=True, cwd=ROOT, check=True)
        lock_text = resolved.read_text(encoding="utf-8")
    write_atomically(LOCK, lock_text)
    write_atomically(ENVIRONMENT, environment_yml(pyproject, locked_versions(lock_text)))
    print(f"wrote {LOCK.name} ({len(locked_versions(lock_text))} packages) and {ENVIRONMENT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
