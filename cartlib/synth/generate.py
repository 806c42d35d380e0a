"""Generate a synthetic cohort (any size) and write it as a contract-shaped CSV folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm  # the text bar: tqdm.auto warns in a notebook kernel without ipywidgets

from . import model, outcomes, tables

TABLES = ("subjects", "events", "adverse_events", "medications", "pk", "labs")
CHUNK = 10_000          # patients per chunk; fixed so results do not depend on the machine
SORT_KEYS = {
    "subjects": ["USUBJID"],
    "events": ["USUBJID", "DAY", "EVENT"],
    "adverse_events": ["USUBJID", "TERM", "ONSET_DAY"],
    "medications": ["USUBJID", "DRUG", "START_DAY"],
    "pk": ["USUBJID", "DAY"],
    "labs": ["USUBJID", "TEST", "DAY"],
}
DECIMALS = {"AGE": 1, "DX_TO_INF_MO": 1, "DOSE": 2, "MRD_PRELD": 7, "MRD_POSTLD": 7,
            "DAY": 0, "CONC": 0, "VALUE": 2}


def simulate_subjects(rng, n, params, cal=None):
    """All patient-level quantities of the model as a dict of arrays (see model / outcomes).

    Mechanisms added after the bundled cohort was calibrated draw from ``side``, a child
    stream of ``rng`` (``rng.spawn``, which leaves ``rng``'s own draws unchanged), so that
    with those mechanisms switched off every other draw is the one it always was.

    >>> s = simulate_subjects(np.random.default_rng(0), 10, model.load_parameters())
    >>> s["age"].shape, "last_contact" in s
    ((10,), True)
    """
    cal = cal or {}
    side = rng.spawn(1)[0]
    s = model.baseline(rng, n, params, cal)
    s.update(model.mrd(rng, n, params, cal, s))
    s.update(model.kinetic_parameters(rng, n, params, s, side))
    s.update(model.toxicity(rng, n, params, cal, s, side))
    s.update(model.response(rng, n, params, cal, s))
    s.update(outcomes.bcell_aplasia(rng, n, params, cal, s))
    s.update(outcomes.outcomes(rng, n, params, cal, s))
    return s


def build_tables(rng, ids, s, params, cal=None):
    """The six contract tables from simulated patients (unsorted; see :func:`finalize`).

    >>> rng = np.random.default_rng(0)
    >>> p = model.load_parameters()
    >>> t = build_tables(rng, subject_ids(3), simulate_subjects(rng, 3, p), p)
    >>> len(t["subjects"])
    3
    """
    cal = cal or {}
    labs_anc, nadir_day = tables.anc_labs(rng, ids, s, params)
    out = {
        "subjects": tables.subject_table(rng, ids, s),
        "events": tables.event_table(ids, s),
        "adverse_events": tables.adverse_event_table(ids, s, nadir_day),
        "medications": tables.medication_table(ids, s),
        "pk": tables.pk_table(rng, ids, s, params, cal),
        "labs": pd.concat([tables.bcell_labs(rng, ids, s, params), tables.il6_labs(rng, ids, s, params),
                           labs_anc], ignore_index=True),
    }
    return out


def subject_ids(n, start=0, count=None):
    """Pseudonymous ids SYN-01 ... for a cohort of ``n`` (width grows with n so that text order
    is numeric order); ``start``/``count`` select a slice.

    >>> subject_ids(3).tolist()
    ['SYN-1', 'SYN-2', 'SYN-3']
    >>> subject_ids(100, start=98).tolist()
    ['SYN-099', 'SYN-100']
    """
    width = len(str(n))
    stop = n if count is None else start + count
    return np.array([f"SYN-{i + 1:0{width}d}" for i in range(start, stop)])


def finalize(frames):
    """Sort rows deterministically and round numbers to the written precision.

    >>> rng = np.random.default_rng(0)
    >>> p = model.load_parameters()
    >>> t = finalize(build_tables(rng, subject_ids(3), simulate_subjects(rng, 3, p), p))
    >>> t["pk"]["USUBJID"].is_monotonic_increasing
    True
    """
    out = {}
    for name in TABLES:
        df = frames[name].copy()
        for col, d in DECIMALS.items():
            if col in df and df[col].dtype.kind == "f":
                df[col] = df[col].round(d)
        out[name] = df.sort_values(SORT_KEYS[name], kind="stable").reset_index(drop=True)
    if "DAY" in out["pk"]:
        out["pk"]["DAY"] = out["pk"]["DAY"].astype(np.int64)
    for name in ("labs",):
        out[name]["DAY"] = out[name]["DAY"].astype(np.int64)
    pk = out["pk"]
    pk["CONC"] = pk["CONC"].astype(object).where(pk["CONC"].notna(), "BLQ")
    pk["CONC"] = [v if isinstance(v, str) else int(v) for v in pk["CONC"]]
    return out


def generate_cohort(n, seed, params=None, cal=None, progress=None, adjust=None):
    """A synthetic cohort of ``n`` patients: dict of the six tables of docs/COHORT.md.

    Deterministic per (n, seed, params): numpy ``Generator(PCG64(seed))`` per chunk of
    10,000 patients (children of ``SeedSequence(seed)``). ``params`` defaults to
    ``parameters/synthetic.yaml``; ``cal`` holds calibration quotas and ``adjust`` a function
    applied to the simulated patients before sampling (both used by the calibrated default).

    >>> t = generate_cohort(5, seed=1)
    >>> sorted(t), len(t["subjects"])
    (['adverse_events', 'events', 'labs', 'medications', 'pk', 'subjects'], 5)
    >>> set(t["pk"]["CONC"].map(type)) <= {int, str}
    True
    """
    if not 1 <= int(n) <= 1_000_000:
        raise ValueError("n must be between 1 and 1,000,000")
    n = int(n)
    params = params or model.load_parameters()
    sizes = [min(CHUNK, n - i) for i in range(0, n, CHUNK)]
    seeds = np.random.SeedSequence(int(seed)).spawn(len(sizes))
    show = progress if progress is not None else n >= 20_000
    parts, start = [], 0
    for size, ss in tqdm(list(zip(sizes, seeds)), desc="synth", disable=not show):
        rng = np.random.Generator(np.random.PCG64(ss))
        s = simulate_subjects(rng, size, params, cal)
        # the B-cell visit days come from their own stream (a child of the chunk's seed), so that
        # calibration stages in ``adjust`` see the aplasia durations the labs will give
        lab_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (1,))))
        s["bcell_visit_days"] = tables.bcell_visit_days(lab_rng, size, params)
        if adjust is not None:
            s = adjust(s)
        parts.append(build_tables(rng, subject_ids(n, start, size), s, params, cal))
        start += size
    frames = {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in TABLES}
    return finalize(frames)


def format_column(series):
    """The text :func:`write_cohort` writes for a column (fixed decimals per column name).

    >>> format_column(pd.Series([1.25, np.nan], name="DOSE"))
    ['1.25', '']
    """
    if series.dtype.kind == "f":
        d = DECIMALS.get(series.name, 4)
        return [("" if np.isnan(v) else f"{v:.{d}f}".rstrip("0").rstrip(".") if d else f"{v:.0f}")
                for v in series.to_numpy()]
    return series.astype(str).tolist() if series.dtype.kind != "O" else series.map(
        lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).tolist()


def write_cohort(tables_, out_dir, overwrite=False):
    """Write the tables as ``<name>.csv`` (UTF-8, ``\\n`` line ends, fixed number formatting).

    Refuses a non-empty folder unless ``overwrite=True``. Returns the written paths.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> [p.name for p in write_cohort(generate_cohort(5, seed=1), d)][:2]
    ['subjects.csv', 'events.csv']
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass overwrite=True to replace its tables")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    big = len(tables_["subjects"]) >= 20_000
    for name in tqdm(TABLES, desc="write", disable=not big):
        df = tables_[name]
        text = pd.DataFrame({c: format_column(df[c]) for c in df.columns}, columns=df.columns)
        path = out / f"{name}.csv"
        text.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        paths.append(path)
    return paths
