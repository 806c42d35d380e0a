"""Summaries of the NCA parameters: group statistics, the paper's Table 3, correlations,
and the cohort summary of AUClast, the partial AUCs and the terminal half-life.

The tests themselves (Mann–Whitney, correlation) come from :mod:`cartlib.stats.compare`;
this module only decides *which* patients are compared and lays the results out.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from ..params import mrd_label
from ..stats.compare import correlation, mann_whitney
from .nca import NCARules, daily_profile, partial_aucs
from .terminal import ESTIMATED, lambda_z

#: Parameters with a geometric mean (log-normal data, docs/NCA.md).
GEOMETRIC = ("cmax", "auc28")
#: Parameters summarised by ``summarise_nca``, in row order.
SUMMARISED = ("cmax", "auc28", "tmax", "tlast")
SUMMARY_COLUMNS = ("n", "median", "min", "max", "n_geo", "geomean", "geocv_pct", "reason")


def _median_of(values: np.ndarray) -> float:
    """Median of the non-missing values of a float array; NaN (silently) when there is none
    (NumPy's median, which is what pandas' ``Series.median`` computes)."""
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else np.nan


def _describe(values: pd.Series, geometric: bool) -> dict:
    """n, median, range and (if ``geometric``) geometric mean/CV% over positive values."""
    # NumPy on the non-missing values: the same sums pandas' median/mean/var make (it calls
    # NumPy), without a Series per statistic
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    x = x[~np.isnan(x)]
    empty = x.size == 0
    out = {"n": int(x.size), "median": _median_of(x), "min": np.nan if empty else x.min(),
           "max": np.nan if empty else x.max(), "n_geo": np.nan, "geomean": np.nan, "geocv_pct": np.nan,
           "reason": None}
    if empty:
        out["reason"] = "no non-missing value"
    if not geometric:
        return out
    logs = np.log(x[x > 0])
    out["n_geo"] = int(logs.size)
    if logs.size:
        out["geomean"] = float(np.exp(logs.mean()))
    if logs.size >= 2:
        out["geocv_pct"] = float(np.sqrt(np.expm1(logs.var(ddof=1))) * 100)
    elif logs.size == 1:
        out["reason"] = "1 positive value(s): geometric CV needs 2"
    elif not empty:
        out["reason"] = "no positive value: no geometric mean"
    return out


def summarise_columns(df: pd.DataFrame, columns, geometric=()) -> pd.DataFrame:
    """:func:`summarise_nca`'s statistics (``SUMMARY_COLUMNS``) for any numeric ``columns``.

    One row per column; the geometric mean and CV% only for the columns in ``geometric``.

    >>> df = pd.DataFrame({"half_life": [10.0, 20.0, np.nan], "auclast": [1.0, 100.0, 0.0]})
    >>> s = summarise_columns(df, ["half_life", "auclast"], geometric=["auclast"])
    >>> s[["n", "median", "n_geo", "geomean"]].astype(float).round(6).to_dict("index")
    {'half_life': {'n': 2.0, 'median': 15.0, 'n_geo': nan, 'geomean': nan}, 'auclast': {'n': 3.0, 'median': 1.0, 'n_geo': 2.0, 'geomean': 10.0}}
    """
    missing = [c for c in columns if c not in df]
    if missing:
        raise ValueError(f"summarise_columns: no column {missing}")
    rows = {c: _describe(df[c], c in set(geometric)) for c in columns}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(SUMMARY_COLUMNS))


def summarise_nca(nca_df: pd.DataFrame, by=None) -> pd.DataFrame:
    """Group summaries of NCA parameters (docs/NCA.md, "Group summaries").

    For ``cmax``, ``auc28``, ``tmax``, ``tlast``: ``n`` (non-missing), ``median``,
    ``min``, ``max``; for ``cmax`` and ``auc28`` also the geometric mean ``geomean`` and
    geometric CV% ``geocv_pct`` = sqrt(exp(sd_log²) − 1)·100 (sd with n − 1), computed
    over the **positive values only** (``n_geo`` of them; a zero AUC has no logarithm).
    ``reason`` says why a statistic is NaN. ``by`` (a column name of ``nca_df`` or a
    Series aligned on its index) gives one block per group (index ``(group, parameter)``;
    patients with a missing group are left out).

    >>> df = pd.DataFrame({"cmax": [100.0, 10000.0, np.nan], "auc28": [0.0, 5.0, 20.0],
    ...                    "tmax": [7.0, 14.0, np.nan], "tlast": [28.0, 90.0, np.nan]})
    >>> s = summarise_nca(df)
    >>> s.loc["cmax", ["n", "median", "geomean"]].astype(float).round(6).to_dict()
    {'n': 2.0, 'median': 5050.0, 'geomean': 1000.0}
    >>> s.loc["auc28", ["n", "n_geo", "geomean"]].astype(float).round(6).to_dict()
    {'n': 3.0, 'n_geo': 2.0, 'geomean': 10.0}
    >>> summarise_nca(df, by=pd.Series(["a", "a", "b"])).loc[("b", "auc28"), "reason"]
    '1 positive value(s): geometric CV needs 2'
    """
    missing = [c for c in SUMMARISED if c not in nca_df]
    if missing:
        raise ValueError(f"summarise_nca needs the columns {missing}")
    if by is None:
        return summarise_columns(nca_df, SUMMARISED, GEOMETRIC)
    groups = nca_df[by] if isinstance(by, str) else pd.Series(by, index=nca_df.index)
    nca_df = nca_df[list(SUMMARISED)]   # the groups of a wide analysis table: only the columns summarised
    blocks = {key: summarise_nca(part) for key, part in nca_df.groupby(groups, sort=True)}
    out = pd.concat(blocks, names=[groups.name or "group", "parameter"])
    return out


# --- Table 3 --------------------------------------------------------------------------

def _flag(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    """A 0/1 (or Y/N) column as booleans, missing kept missing."""
    def split(a: pd.DataFrame) -> pd.Series:
        v = a[column]
        # not ``dtype == object``: pandas 3 stores text as its own string dtype
        if not pd.api.types.is_numeric_dtype(v) and not pd.api.types.is_bool_dtype(v):
            v = v.astype(str).str.upper().map({"Y": 1, "N": 0, "1": 1, "0": 0})
        v = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return _booleans(a.index, v == 1, (v == 1) | (v == 0))
    return split


def _below(column: str, cut: float, inclusive: bool = False) -> Callable[[pd.DataFrame], pd.Series]:
    """``column < cut`` (``<=`` when ``inclusive``) as booleans, missing kept missing."""
    def split(a: pd.DataFrame) -> pd.Series:
        v = pd.to_numeric(a[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return _booleans(a.index, v <= cut if inclusive else v < cut, ~np.isnan(v))
    return split


def _booleans(index, yes: np.ndarray, present: np.ndarray) -> pd.Series:
    """``yes`` where ``present``, missing (NaN) elsewhere. Built in NumPy: Table 3 splits the
    cohort 19 ways, and Series arithmetic would cost more than its tests."""
    values = yes.astype(object)
    values[~present] = np.nan
    return pd.Series(values, index=index)


def table3_rows(age_cut: float, dose_cut: float, mrd_cuts):
    """Table 3's grouping rows: (row id, label, split, ((level id, label, value of split), ...)),
    in the paper's order; ``split(analysis_table)`` gives each patient's value (missing kept).

    >>> [r[0] for r in table3_rows(10, 3.68, (1e-4,))][:3]
    ['age', 'sex', 'prior_hsct']
    """
    yes_no = (("yes", "Yes", True), ("no", "No", False))
    rows = [("age", "Age, y", _below("AGE", age_cut, inclusive=True),
             ((f"le_{age_cut:g}", f"0-{age_cut:g}", True), (f"gt_{age_cut:g}", f">{age_cut:g}", False))),
            ("sex", "Sex", lambda a: (a["SEX"].astype(str).str.upper() == "M").where(a["SEX"].notna()),
             (("male", "Male", True), ("female", "Female", False))),
            ("prior_hsct", "HSCT history", _flag("PRIOR_HSCT"), yes_no),
            ("prior_cart", "CAR-T history", _flag("PRIOR_CART"), yes_no)]
    for when, column in (("preld", "MRD_PRELD"), ("postld", "MRD_POSTLD")):
        for cut in mrd_cuts:
            rows.append((f"{when}_mrd_{mrd_label(cut)}", f"{'Pre' if when == 'preld' else 'Post'}-LD MRD",
                         _below(column, cut),
                         (("lt", f"<{cut:g}", True), ("ge", f">={cut:g}", False))))
    rows += [("dose", "CAR-T dose", _below("DOSE", dose_cut),
              (("ge", f">={dose_cut:g}", False), ("lt", f"<{dose_cut:g}", True))),
             ("crs", "CRS", _below("crs_grade", 2, inclusive=True),
              (("0-2", "0-2", True), ("ge_3", ">=3", False))),
             ("icans", "ICANS", _flag("icans"), yes_no[::-1]),
             ("neutropenia_g4", "Grade 4 neutropenia", _flag("neutropenia_g4"), yes_no),
             ("tocilizumab", "Tocilizumab", _flag("tocilizumab"), yes_no),
             ("corticosteroid", "Steroids", _flag("corticosteroid"), yes_no),
             ("d28_mrd_neg", "MRD-CR on Day 28", _flag("d28_mrd_neg"), yes_no)]
    return rows


_table3_rows = table3_rows   # the name used inside this module


TABLE3_NEEDS = ("AGE", "SEX", "PRIOR_HSCT", "PRIOR_CART", "MRD_PRELD", "MRD_POSTLD", "DOSE",
                "crs_grade", "icans", "neutropenia_g4", "tocilizumab", "corticosteroid",
                "d28_mrd_neg", "cmax", "auc28", "tlast")
TABLE3_STATS = ("cmax", "auc28", "tlast")


def _p_value(x, y) -> tuple[float, str | None]:
    """Mann–Whitney p with missing values dropped, and why it is NaN when it is."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if not x.size or not y.size:
        return np.nan, "a group has no value"
    res = mann_whitney(x, y)
    p = np.nan if res.p_value is None else float(res.p_value)
    return p, getattr(res, "reason", None)


def table3(analysis: pd.DataFrame, age_cut: float = 10, dose_cut: float | None = None,
           mrd_cuts=(1e-4, 1e-3, 1e-2)) -> pd.DataFrame:
    """The paper's Table 3: kinetics by clinical characteristic, Mann–Whitney p per row.

    ``analysis`` is the analysis table with the NCA columns joined (ARCHITECTURE.md).
    Index ``(row, level)`` with key-friendly ids (``age``/``le_10``, ``preld_mrd_1e-4``/
    ``lt``, ``dose``/``ge`` ...); columns ``characteristic`` and ``level_label``
    (printable), ``n`` (patients in the level), ``cmax_median``, ``auc28_median``,
    ``tlast_median`` (missing values dropped per statistic) and ``cmax_p``,
    ``auc28_p``, ``tlast_p`` (two-sided Mann–Whitney, normal approximation with tie and
    continuity correction as RESULTS.md; the same p on both rows of a characteristic)
    with ``cmax_p_reason``, ``auc28_p_reason``, ``tlast_p_reason`` (why that p is NaN,
    e.g. a group without values) and ``p_reason`` (the three joined).
    Rows: age ≤ ``age_cut`` vs above; sex; HSCT and CAR-T history; pre- and post-LD MRD
    < vs ≥ each of ``mrd_cuts``; DOSE ≥ vs < ``dose_cut`` (default: the cohort median
    DOSE); CRS grade 0–2 vs ≥ 3; ICANS; grade-4 neutropenia; tocilizumab; steroids;
    MRD-negative CR on day 28. Patients with a missing characteristic are left out of it.

    >>> a = pd.DataFrame({"AGE": [4, 12, 8, 15], "SEX": ["M", "F", "F", "M"],
    ...     "PRIOR_HSCT": ["N", "N", "Y", "N"], "PRIOR_CART": ["N"] * 4,
    ...     "MRD_PRELD": [0, 2e-3, 0.05, 1e-5], "MRD_POSTLD": [0, 0, 1e-3, 0],
    ...     "DOSE": [1.0, 2.0, 3.0, 4.0], "crs_grade": [1, 3, 0, 2], "icans": [0, 1, 0, 0],
    ...     "neutropenia_g4": [1, 0, 0, 1], "tocilizumab": [0, 1, 0, 0],
    ...     "corticosteroid": [0, 1, 0, 0], "d28_mrd_neg": [1, 1, 1, 0],
    ...     "cmax": [1e4, 3e4, 2e4, np.nan], "auc28": [1e5, 4e5, 2e5, np.nan],
    ...     "tlast": [28.0, 90.0, 60.0, np.nan]})
    >>> t = table3(a)
    >>> t.loc["age", ["n", "cmax_median", "tlast_median"]].to_dict("list")
    {'n': [2, 2], 'cmax_median': [15000.0, 30000.0], 'tlast_median': [44.0, 90.0]}
    >>> row = t.loc[("d28_mrd_neg", "no")]             # no Cmax among the "no" patients
    >>> bool(np.isnan(row["cmax_p"])), row["p_reason"].split("; ")[1]
    (True, 'cmax: a group has no value')
    """
    missing = [c for c in TABLE3_NEEDS if c not in analysis]
    if missing:
        raise ValueError(f"table3 needs the analysis-table columns {missing}")
    if dose_cut is None:
        dose_cut = float(pd.to_numeric(analysis["DOSE"], errors="coerce").median())
    # the statistics as float arrays, split by boolean masks: 19 rows x 2 levels of row
    # selections on the wide analysis table would cost more than every test of the table
    values = {s: pd.to_numeric(analysis[s], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
              for s in TABLE3_STATS}
    records = []
    for row, label, split, levels in _table3_rows(age_cut, dose_cut, mrd_cuts):
        member = split(analysis)
        masks = {value: np.asarray(member.to_numpy() == value, dtype=bool) for _, _, value in levels}
        parts = {value: {s: v[mask] for s, v in values.items()} for value, mask in masks.items()}
        tests = {s: _p_value(parts[True][s], parts[False][s]) for s in TABLE3_STATS}
        reasons = sorted({f"{s}: {r}" for s, (_, r) in tests.items() if r})
        for level, level_label, value in levels:
            part = parts[value]
            rec = {"row": row, "level": level, "characteristic": label,
                   "level_label": level_label, "n": int(masks[value].sum())}
            rec.update({f"{s}_median": _median_of(part[s]) for s in TABLE3_STATS})
            rec.update({f"{s}_p": tests[s][0] for s in TABLE3_STATS})
            rec.update({f"{s}_p_reason": tests[s][1] for s in TABLE3_STATS})
            rec["p_reason"] = "; ".join(reasons) or None
            records.append(rec)
    out = pd.DataFrame.from_records(records).set_index(["row", "level"])
    out.attrs.update(age_cut=age_cut, dose_cut=dose_cut, mrd_cuts=tuple(mrd_cuts))
    return out


# --- correlations -----------------------------------------------------------------------

def correlation_table(df: pd.DataFrame, pairs: dict[str, tuple[str, str]],
                      method: str = "spearman") -> pd.DataFrame:
    """Correlation of each named (x, y) column pair: ``x``, ``y``, ``r``, ``p``, ``n``, ``reason``.

    Patients missing either value are dropped pair by pair; ``n`` is the pairs used.
    The test is :func:`cartlib.stats.compare.correlation` (Spearman: t approximation).

    >>> df = pd.DataFrame({"a": [1, 2, 3, 4, 5], "b": [2, 1, 4, 3, np.nan]})
    >>> correlation_table(df, {"ab": ("a", "b")}).loc["ab", ["r", "n"]].astype(float).round(6).to_dict()
    {'r': 0.6, 'n': 4.0}
    """
    records = {}
    for name, (xcol, ycol) in pairs.items():
        both = df[[xcol, ycol]].apply(pd.to_numeric, errors="coerce").dropna()
        res = correlation(both[xcol].to_numpy(float), both[ycol].to_numpy(float), method)
        records[name] = {"x": xcol, "y": ycol,
                         "r": np.nan if res.estimate is None else float(res.estimate),
                         "p": np.nan if res.p_value is None else float(res.p_value),
                         "n": len(both), "reason": getattr(res, "reason", None)}
    return pd.DataFrame.from_dict(records, orient="index")


def kinetics_correlations(analysis: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """Correlation of Cmax and of AUC0–28d with Tlast (the paper's Figure S3).

    Index ``cmax`` and ``auc28``; columns as :func:`correlation_table`.

    >>> a = pd.DataFrame({"cmax": [1, 2, 3, 4], "auc28": [4, 3, 2, 1.0],
    ...                   "tlast": [10, 20, 30, 40]})
    >>> kinetics_correlations(a)[["r", "n"]].to_dict("index")
    {'cmax': {'r': 1.0, 'n': 4}, 'auc28': {'r': -1.0, 'n': 4}}
    """
    return correlation_table(analysis, {"cmax": ("cmax", "tlast"),
                                        "auc28": ("auc28", "tlast")}, method)


# --- AUClast, partial AUCs and the terminal phase over the cohort --------------------------

#: Terminal-phase columns summarised by :func:`summarise_terminal_and_partial`.
TERMINAL_SUMMARISED = ("half_life", "lambda_z", "lambda_z_n_points", "adj_r_squared")


def terminal_and_partial(pk: pd.DataFrame, rules: NCARules | None = None, patients=None) -> pd.DataFrame:
    """Per patient: :func:`cartlib.pk.nca.partial_aucs` beside :func:`cartlib.pk.terminal.lambda_z`.

    ``patients`` (e.g. the analysis table's index) reindexes the result: a patient without a
    PK row gets missing values and ``lambda_z_status`` "not estimable" ("no sample after day 0").
    ``attrs["auc_intervals"]`` names the interval columns.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 4, "DAY": [7, 14, 21, 28],
    ...                    "CONC": [8000.0, 4000, 2000, 1000], "BLQ_TEXT": False})
    >>> t = terminal_and_partial(pk, NCARules(auc_intervals=[[0, 14]]), patients=["A", "Z"])
    >>> t[["auc_0_14", "half_life", "lambda_z_status"]].round(3).to_dict("index")
    {'A': {'auc_0_14': 68395.461, 'half_life': 7.0, 'lambda_z_status': 'estimated'}, 'Z': {'auc_0_14': nan, 'half_life': nan, 'lambda_z_status': 'not estimable'}}
    """
    rules = rules or NCARules()
    profile = daily_profile(pk, rules)   # both read the same profile: made once
    aucs = partial_aucs(pk, rules, profile=profile)
    out = aucs.join(lambda_z(pk, rules, profile=profile))
    if patients is not None:
        out = out.reindex(pd.Index(patients, name="USUBJID"))
        absent = out["lambda_z_status"].isna()
        out.loc[absent, "lambda_z_status"] = "not estimable"
        out.loc[absent, "lambda_z_reason"] = "no sample after day 0"
    out.attrs.update(aucs.attrs)
    return out


def summarise_terminal_and_partial(per_patient: pd.DataFrame) -> pd.Series:
    """Cohort statistics of :func:`terminal_and_partial`, as a Series indexed (quantity, statistic).

    AUClast and each partial AUC: ``n``, ``median``, ``geomean`` (over the positive values);
    ``half_life``: ``n``, ``median``, ``min``, ``max``; ``lambda_z``, ``lambda_z_n_points``
    and ``adj_r_squared``: ``median`` over the patients with an estimate;
    ``lambda_z_not_estimable``: ``n``, the patients without one (whatever the reason).

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 4 + ["B"] * 2, "DAY": [7, 14, 21, 28, 7, 28],
    ...                    "CONC": [8000.0, 4000, 2000, 1000, 500, 300], "BLQ_TEXT": False})
    >>> s = summarise_terminal_and_partial(terminal_and_partial(pk, NCARules(auc_intervals=[])))
    >>> s[("half_life", "median")], s[("half_life", "n")], s[("lambda_z_not_estimable", "n")]
    (7.0, 1, 1)
    """
    aucs = ["auclast", *per_patient.attrs.get("auc_intervals", {})]
    table = summarise_columns(per_patient, [*aucs, *TERMINAL_SUMMARISED], geometric=aucs)
    wanted = {**{c: ("n", "median", "geomean") for c in aucs}, "half_life": ("n", "median", "min", "max"),
              **{c: ("median",) for c in TERMINAL_SUMMARISED[1:]}}
    values = {(c, stat): int(table.at[c, stat]) if stat == "n" else float(table.at[c, stat])
              for c, stats in wanted.items() for stat in stats}
    values[("lambda_z_not_estimable", "n")] = int((per_patient["lambda_z_status"] != ESTIMATED).sum())
    return pd.Series(values, dtype=object)
