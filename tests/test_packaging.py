"""pyproject.toml and environment.yml must list the same dependencies with the same bounds."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    pip_side["python"] = project["requires-python"].replace(" ", "")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side = dict(_split(d) for d in env["dependencies"] if isinstance(d, str) and d != "pip")
    assert conda_side == pip_side
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert pip_section == ["-e ."], "the conda environment installs cartlib itself with pip -e ."


def test_console_script_points_at_cli_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cartlib"] == "cartlib.cli:main"
    from cartlib.cli import main

    assert callable(main)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
