"""Packaging: requirements.lock, pyproject.toml and environment.yml agree; the console script; CI.

pyproject.toml states the ranges a user's environment may have; requirements.lock pins one set
inside them (the versions the committed notebooks were made with) with hashes; environment.yml
pins the same versions for conda. ``make lock`` rewrites the last two together.
"""
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK_TEXT = (ROOT / "requirements.lock").read_text(encoding="utf-8")
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def declared_requirements() -> dict[str, Requirement]:
    """Runtime dependencies, the test extra and the build backend, by canonical name."""
    project = PYPROJECT["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"] + PYPROJECT["build-system"]["requires"]
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """Each locked package: (version, its sha256 hashes), from the pip requirements syntax."""
    entries = {}
    # an entry is "name==version \" followed by continuation lines of "--hash=sha256:..."
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK_TEXT):
        head = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", block)
        if head:
            entries[canonicalize_name(head[1])] = (head[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def conda_pins() -> dict[str, str]:
    """environment.yml's ``name==version`` entries (python and pip aside), by PyPI name.

    conda-forge's ``-base`` / ``-core`` packages are the PyPI package without optional extras
    (matplotlib without a GUI toolkit, nbconvert without pandoc)."""
    pins = {}
    for dep in ENVIRONMENT["dependencies"]:
        if not isinstance(dep, str) or dep == "pip" or re.match(r"python\b(?!-)", dep):
            continue
        name, sep, version = dep.partition("==")
        assert sep, f"environment.yml: {dep!r} is not pinned with =="
        pins[canonicalize_name(re.sub(r"-(base|core)$", "", name))] = version
    return pins


def test_lock_pins_every_declared_package_within_its_range():
    locked = lock_entries()
    for name, req in declared_requirements().items():
        assert name in locked, f"requirements.lock lacks {name} (pyproject.toml: {req})"
        version = locked[name][0]
        assert req.specifier.contains(version, prereleases=True), \
            f"requirements.lock pins {name}=={version}, outside pyproject.toml's {req.specifier}"


def test_every_locked_package_is_pinned_with_hashes():
    locked = lock_entries()
    assert len(locked) > len(declared_requirements())  # the dependencies of dependencies too
    assert LOCK_TEXT.count("==") >= len(locked)
    unhashed = sorted(name for name, (_, hashes) in locked.items() if not hashes)
    assert not unhashed, f"no --hash for {unhashed}: pip install --require-hashes would refuse the lock"


def test_environment_yml_pins_the_locked_versions_of_the_declared_packages():
    locked = lock_entries()
    expected = {name: locked[name][0] for name in declared_requirements()}
    assert conda_pins() == expected


def test_environment_yml_python_is_the_lock_target_and_allowed_by_pyproject():
    spec = next(d for d in ENVIRONMENT["dependencies"] if isinstance(d, str) and d.startswith("python"))
    conda_python = SpecifierSet(spec.removeprefix("python"))
    requires_python = SpecifierSet(PYPROJECT["project"]["requires-python"])
    # the lock is resolved for CPython 3.11; the conda pin must be a 3.11 that pyproject allows
    assert "3.11.7" in conda_python and "3.12.0" not in conda_python
    assert all(v in requires_python for v in ("3.11.5", "3.11.7"))


def test_environment_yml_installs_cartlib_itself_with_pip():
    pip_section = [d for d in ENVIRONMENT["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert pip_section == ["-e ."]
    assert ENVIRONMENT["channels"] == ["conda-forge"]


def test_make_setup_installs_the_lock_with_hashes_and_test_latest_uses_its_own_venv():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    setup_recipe = makefile.split("$(STAMP): pyproject.toml $(LOCK)\n", 1)[1].split("\n\n", 1)[0]
    assert "--require-hashes -r $(LOCK)" in setup_recipe and "--no-deps" in setup_recipe
    assert "LOCK := requirements.lock" in makefile
    latest = makefile.split("\ntest-latest:\n", 1)[1].split("\n\n", 1)[0]
    assert "$(LATEST_VENV)" in latest and "test VENV=$(LATEST_VENV)" in latest
    assert "LATEST_VENV := .venv-latest" in makefile


@pytest.mark.parametrize("broken, message", [
    ("numpy==1.20.0", "outside pyproject.toml's"),
    ("", "requirements.lock lacks numpy"),
])
def test_the_range_check_catches_a_bad_pin(monkeypatch, broken, message):
    """The agreement test fails on a pin outside the range and on a missing pin."""
    numpy_entry = re.search(r"^numpy==\S+", LOCK_TEXT, re.M)[0]
    monkeypatch.setattr(sys.modules[__name__], "LOCK_TEXT", LOCK_TEXT.replace(numpy_entry, broken))
    with pytest.raises(AssertionError, match=message):
        test_lock_pins_every_declared_package_within_its_range()


def test_console_script_points_at_cli_main():
    assert PYPROJECT["project"]["scripts"]["cartlib"] == "cartlib.cli:main"
    from cartlib.cli import main

    assert callable(main)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
