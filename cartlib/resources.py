"""Where the files cartlib reads at run time are: the notebooks, the parameter files, the bundled cohort.

An installed wheel carries the notebooks and parameter files inside the package
(``cartlib/_bundled/``, packed by the build from the repository's ``notebooks/`` and
``parameters/``). A source checkout or an editable install has no such copy and reads the
repository's own folders, which stay the single source. The bundled cohort is package data in
both cases (``cartlib/data/default_cohort/``). Every function returns a real folder or file
on disk, as papermill and the CSV reader need.

>>> notebooks_dir().joinpath("00_cohort.ipynb").is_file()
True
>>> parameters_file("synthetic.yaml").name
'synthetic.yaml'
>>> sorted(p.name for p in default_cohort_dir().glob("*.csv"))[:2]
['adverse_events.csv', 'events.csv']
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "cartlib"
BUNDLE = "_bundled"  # inside the installed package; written by the build (setup.py), never committed


def _package_dir() -> Path:
    """The installed package as a folder (a zipped install cannot give papermill real paths)."""
    root = resources.files(PACKAGE)
    if not isinstance(root, Path):
        raise RuntimeError(f"cartlib must be installed as plain files, not inside an archive ({root})")
    return root


def _shipped_folder(name: str) -> Path:
    """``name`` (``notebooks`` or ``parameters``) as packed into the wheel, else the checkout's."""
    package = _package_dir()
    bundled = package / BUNDLE / name
    if bundled.is_dir():
        return bundled
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    raise FileNotFoundError(
        f"cartlib's {name}/ folder is missing: neither {bundled} (an installed wheel) nor "
        f"{checkout / name} (a source checkout) exists; reinstall cartlib")


def notebooks_dir() -> Path:
    """The folder of the workbook notebooks (``00_cohort.ipynb`` … ``06_scorecard.ipynb``).

    Returns
    -------
    pathlib.Path
        ``cartlib/_bundled/notebooks`` of an installed wheel, or the repository's ``notebooks/``.

    Examples
    --------
    >>> sorted(p.name for p in notebooks_dir().glob("*.ipynb"))[0]
    '00_cohort.ipynb'
    """
    return _shipped_folder("notebooks")


def parameters_dir() -> Path:
    """The folder of the parameter files (``default.yaml``, ``sensitivity.yaml``, ``synthetic.yaml``, ``paper.yaml``).

    Examples
    --------
    >>> "default.yaml" in {p.name for p in parameters_dir().glob("*.yaml")}
    True
    """
    return _shipped_folder("parameters")


def parameters_file(name: str) -> Path:
    """One parameter file by its file name, e.g. ``"paper.yaml"``.

    Parameters
    ----------
    name : str
        File name inside the parameters folder (no directories).

    Raises
    ------
    FileNotFoundError
        Naming the file and listing the ones there are.

    Examples
    --------
    >>> parameters_file("default.yaml").is_file()
    True
    >>> parameters_file("nope.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: no parameter file 'nope.yaml'; cartlib ships default.yaml, ...
    """
    folder = parameters_dir()
    path = folder / name
    if Path(name).name != name or not path.is_file():
        shipped = ", ".join(sorted(p.name for p in folder.glob("*.yaml")))
        raise FileNotFoundError(f"no parameter file {name!r}; cartlib ships {shipped}")
    return path


def default_cohort_dir() -> Path:
    """The bundled synthetic cohort: six contract-shaped CSV files (``cartlib/data/default_cohort``).

    Examples
    --------
    >>> len(list(default_cohort_dir().glob("*.csv")))
    6
    """
    return _package_dir() / "data" / "default_cohort"


def simulation_reference_dir() -> Path:
    """The bundled reference simulations of the unchanged model (``cartlib/data/simulation_reference``),
    read by :mod:`cartlib.simulate.reference`.

    Examples
    --------
    >>> (simulation_reference_dir() / "reference.json").is_file()
    True
    """
    return _package_dir() / "data" / "simulation_reference"
