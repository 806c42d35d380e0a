"""The calibration pipeline of the bundled 50-patient cohort (docs/SYNTHETIC.md).

:func:`simulated_tables` runs steps 1-4: the model's draws under the paper's quotas and pins
(:mod:`calibration.figures`), the nudges (:mod:`calibration.nudges`), then the stages on the
latent patients (:func:`~calibration.fit_toxicity.fit_toxicity`,
:func:`~calibration.fit_outcomes.fit_outcomes`); :func:`default_cohort_tables` adds step 5, the
kinetics stage on the finished tables (:func:`~calibration.fit_kinetics.fit_kinetics`).
:func:`write_default_cohort` writes the result into the package atomically. The seeds and
settings are recorded under ``calibration:`` in ``parameters/synthetic.yaml``; :func:`search`
re-runs the seed search of step 2 (slow, by hand).
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

from cartlib.synth import DEFAULT_COHORT_DIR
from cartlib.synth.generate import generate_cohort, write_cohort
from cartlib.synth.model import load_parameters

from .figures import evaluate, loss, paper_calibration, paper_figures
from .fit_kinetics import fit_kinetics
from .fit_outcomes import fit_outcomes
from .fit_toxicity import fit_toxicity
from .nudges import nudge


def calibrated_settings(params=None) -> dict:
    """The recorded search result (``calibration`` of parameters/synthetic.yaml).

    >>> sorted(calibrated_settings())
    ['model', 'nrm_n', 'relapse_death_n', 'seed', 'stages']
    """
    return dict((params or load_parameters())["calibration"])


def calibrated_parameters(params=None) -> dict:
    """The model parameters the bundled cohort is built with: ``params`` (default
    parameters/synthetic.yaml) with the values under ``calibration.model`` in place, i.e. the
    mechanisms added to the model after the calibration switched off (docs/SYNTHETIC.md).

    >>> p = calibrated_parameters()
    >>> p["outcomes"]["nrm_intercept_hsct"], load_parameters()["outcomes"]["nrm_intercept_hsct"]
    (-3.0, -1.7)
    """
    params = copy.deepcopy(params or load_parameters())
    for block, values in (params["calibration"].get("model") or {}).items():
        unknown = set(values) - set(params[block])
        if unknown:
            raise KeyError(f"calibration.model.{block} names no model parameter: {sorted(unknown)}")
        params[block].update(values)
    return params


def simulated_tables(params=None, paper=None, details=None) -> dict:
    """Steps 1-4 (docs/SYNTHETIC.md): the model's draws with quotas, pins and nudges, and the
    stages on the latent patients (:func:`~calibration.fit_toxicity.fit_toxicity`, then
    :func:`~calibration.fit_outcomes.fit_outcomes`), as tables; the kinetics stage follows
    in :func:`default_cohort_tables`. ``details``: an optional dict, filled with copies of the
    latent patients after the nudges (``nudged``), the toxicity stage (``toxicity``) and the
    outcome stage (``outcomes``).
    """
    params = calibrated_parameters(params)
    settings = calibrated_settings(params)
    stages = settings.get("stages", {})
    cal = paper_calibration(paper)
    cal.update(relapse_death_n=settings["relapse_death_n"], nrm_n=settings["nrm_n"])
    figures = paper_figures(paper)
    n = {r["key"]: r["value"] for r in figures}["cohort.n"]

    def record(name, s):
        if details is not None:
            details[name] = copy.deepcopy(s)
        return s

    def adjust(s):
        s = record("nudged", nudge(s, cal))
        s = record("toxicity", fit_toxicity(s, figures, **stages.get("toxicity", {})))
        return record("outcomes", fit_outcomes(s, figures, params=params, **stages.get("outcomes", {})))

    return generate_cohort(n, settings["seed"], params, cal=cal, adjust=adjust)


def default_cohort_tables(params=None, paper=None, details=None, simulated=None) -> dict:
    """The calibrated 50-patient default cohort, re-derived deterministically from the model:
    :func:`simulated_tables`, then the kinetics stage (about 40 s of one core in all; tests/test_synth.py checks it)
    (:func:`~calibration.fit_kinetics.fit_kinetics`, step 5; ``details`` is its record of what
    it assigned). ``simulated``: the result of :func:`simulated_tables` with the same arguments,
    if already at hand (the tests share one).

    >>> t = default_cohort_tables()       # doctest: +SKIP
    >>> len(t["subjects"]), int((t["subjects"]["SEX"] == "F").sum())   # doctest: +SKIP
    (50, 23)
    """
    params = calibrated_parameters(params)
    stages = calibrated_settings(params).get("stages", {})
    tables = simulated_tables(params, paper) if simulated is None else simulated
    return fit_kinetics(tables, paper_figures(paper), params=params, details=details,
                        **stages.get("kinetics", {}))


def write_default_cohort(out_dir=DEFAULT_COHORT_DIR, tables=None):
    """(Re)write the bundled cohort files from :func:`default_cohort_tables` (or ``tables``),
    atomically: the CSV files go to a temporary folder beside ``out_dir``, which then replaces
    it (a failed run leaves the previous files as they were). Returns the written paths.

    >>> import tempfile
    >>> from cartlib.synth import generate_cohort
    >>> out = Path(tempfile.mkdtemp()) / "cohort"
    >>> [p.name for p in write_default_cohort(out, generate_cohort(5, seed=1))][0]
    'subjects.csv'
    """
    out = Path(out_dir)
    tables = default_cohort_tables() if tables is None else tables
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    old = out.parent / f".{out.name}.old"
    try:
        names = [p.name for p in write_cohort(tables, fresh, overwrite=True)]
        os.chmod(fresh, 0o777 & ~_umask())
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(fresh, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.replace(old, out)            # the previous files, as they were
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return [out / name for name in names]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def search(seeds, relapse_deaths=(10, 11, 12), nrm=(1,), params=None, evaluate_fn=evaluate):
    """Score every (seed, deaths after relapse, NRM) combination; returns rows sorted by loss.

    ``evaluate_fn(tables, params) -> dict`` gives the results keys (default: the suite's
    ``compute_results``); :func:`loss` compares them with paper.yaml. Slow (seconds per
    candidate); run by hand, then record the choice in synthetic.yaml (docs/SYNTHETIC.md).

    >>> rows = search([0], relapse_deaths=(10,), nrm=(1,), evaluate_fn=lambda t, p: {})
    >>> rows[0][1:]                       # (loss, seed, deaths after relapse, NRM)
    (0, 10, 1)
    """
    params = params or load_parameters()
    figures = paper_figures()
    base = paper_calibration()
    rows = []
    for seed in seeds:
        for rd in relapse_deaths:
            for k in nrm:
                cal = dict(base, relapse_death_n=rd, nrm_n=k)
                tables = generate_cohort(50, seed, params, cal=cal, adjust=lambda s, c=cal: nudge(s, c))
                rows.append((loss(evaluate_fn(tables, None), figures), seed, rd, k))
    return sorted(rows)
