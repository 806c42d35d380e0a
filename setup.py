"""One build step beyond pyproject.toml: pack the notebooks and parameter files into the wheel.

The repository's top-level ``notebooks/`` and ``parameters/`` stay the only copy under version
control. A (non-editable) build copies them into ``cartlib/_bundled/`` of the built package,
where :mod:`cartlib.resources` finds them after ``pip install``; an editable install and a
source checkout read the repository folders directly. Everything else is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE_ROOT = Path(__file__).resolve().parent
BUNDLE_DIR = Path("cartlib") / "_bundled"
BUNDLED_FILES = {"notebooks": "*.ipynb", "parameters": "*.yaml", "parameters/scenarios": "*.yaml"}  # repository folder -> files packed


def bundled_sources() -> dict[Path, Path]:
    """Each file to pack (absolute) and its place inside the built package tree (relative)."""
    files = {}
    for folder, pattern in BUNDLED_FILES.items():
        found = sorted((SOURCE_ROOT / folder).glob(pattern))
        if not found:  # an incomplete source tree must not give a wheel that cannot run
            raise FileNotFoundError(f"nothing matches {folder}/{pattern} in {SOURCE_ROOT}; cannot pack the wheel")
        files.update({src: BUNDLE_DIR / folder / src.name for src in found})
    return files


class BuildPyWithBundle(build_py):
    """setuptools' build_py, then the notebooks and parameter files copied into the build tree."""

    def run(self):
        super().run()
        if self.editable_mode:  # the editable package reads the repository folders themselves
            return
        bundle = Path(self.build_lib) / BUNDLE_DIR
        shutil.rmtree(bundle, ignore_errors=True)  # build tree only: no file removed upstream may linger
        for src, rel in bundled_sources().items():
            target = Path(self.build_lib) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(Path(self.build_lib) / rel) for rel in bundled_sources().values()]


setup(cmdclass={"build_py": BuildPyWithBundle})
