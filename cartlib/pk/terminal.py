"""Terminal phase of each CAR-T profile: lambda_z and the half-life, per ``docs/NCA.md``.

The point selection is PKNCA's default ("curve stripping"): every set of the last k >= 3
quantifiable days after Tmax, ending at Tlast, is fitted by least squares of
log(concentration) on day; the chosen fit has lambda_z > 0 and an adjusted R² within
``adj_r_squared_factor`` (1e-4) of the best adjusted R² of all the candidate fits, and,
among several such fits, the most points. Phoenix WinNonlin's "best fit" rule is the same;
``tests/test_nca.py`` checks both against their published Theoph results.

All candidate fits of the whole cohort are computed at once from suffix sums (each
candidate is the previous one plus one earlier point), so a 5,000-patient cohort takes
one grouped pass, not 5,000 regressions per window.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .nca import NCARules, daily_profile, peak_and_last, profile_arrays

#: PKNCA's ``min.hl.points``: fewest points of a terminal fit.
MIN_POINTS = 3
#: PKNCA's ``adj.r.squared.factor``: a fit within this of the best adjusted R² ties with it.
ADJ_R_SQUARED_FACTOR = 1e-4

#: Columns of :func:`lambda_z` (and keys of :func:`lambda_z_profile`), in order.
LAMBDA_Z_COLUMNS = ("lambda_z", "half_life", "lambda_z_n_points", "r_squared", "adj_r_squared",
                    "lambda_z_time_first", "lambda_z_time_last", "clast_pred", "span_ratio",
                    "lambda_z_status", "lambda_z_reason")
ESTIMATED = "estimated"
NOT_ESTIMABLE = "not estimable"


def _candidate_fits(points: pd.DataFrame) -> pd.DataFrame:
    """Every terminal fit of every patient: one row per (patient, k = points from Tlast back).

    ``points`` holds USUBJID, DAY, value (> 0), sorted by patient and by DAY *descending*.
    Days and log concentrations are taken relative to the patient's last point (Tlast,
    Clast), which keeps the suffix sums small and the differences of sums accurate.
    """
    by = points.groupby("USUBJID", sort=False)
    x = points["DAY"] - by["DAY"].transform("first")
    y = np.log(points["value"]) - np.log(by["value"].transform("first"))
    sums = pd.DataFrame({"n": 1.0, "x": x, "y": y, "xx": x * x, "yy": y * y, "xy": x * y},
                        index=points.index).groupby(points["USUBJID"], sort=False).cumsum()
    n = sums["n"]
    sxx = sums["xx"] - sums["x"] ** 2 / n
    syy = sums["yy"] - sums["y"] ** 2 / n
    sxy = sums["xy"] - sums["x"] * sums["y"] / n
    with np.errstate(all="ignore"):
        slope = sxy / sxx
        # r² of a line through constant concentrations is 0/0: undefined, as in R's lm.
        r_squared = (sxy * sxy / (sxx * syy)).clip(upper=1.0).where(syy > 0)
        adj = 1 - (1 - r_squared) * (n - 1) / (n - 2)
        lam = -slope
        # The fitted line at Tlast: intercept of the centred fit, back on the original scale.
        clast_pred = points["value"].groupby(points["USUBJID"], sort=False).transform("first") * np.exp(
            sums["y"] / n - slope * sums["x"] / n)
    return pd.DataFrame({"USUBJID": points["USUBJID"], "n": n.astype(int), "lambda_z": lam,
                         "r_squared": r_squared, "adj_r_squared": adj,
                         "lambda_z_time_first": points["DAY"],
                         "lambda_z_time_last": by["DAY"].transform("first"),
                         "clast_pred": clast_pred}, index=points.index)


def terminal_phase(profile: pd.DataFrame, *, min_points: int = MIN_POINTS,
                   adj_r_squared_factor: float = ADJ_R_SQUARED_FACTOR,
                   include_tmax: bool = False) -> pd.DataFrame:
    """lambda_z of every patient of a :func:`cartlib.pk.nca.daily_profile` (USUBJID, DAY, value).

    Returns one row per patient of ``profile`` with :data:`LAMBDA_Z_COLUMNS`; see
    :func:`lambda_z` for their meaning. ``include_tmax`` lets the Tmax day itself enter the
    fits (PKNCA's ``allow.tmax.in.half.life``, off by default).
    """
    if int(min_points) != min_points or min_points < 3:
        raise ValueError(f"min_points must be a whole number >= 3 (adjusted R² needs 3), not {min_points!r}")
    if not np.isfinite(adj_r_squared_factor) or adj_r_squared_factor < 0:
        raise ValueError(f"adj_r_squared_factor must be a finite number >= 0, not {adj_r_squared_factor!r}")
    subjects = pd.Index(pd.unique(profile["USUBJID"]), name="USUBJID")
    peak = peak_and_last(profile)
    tmax = profile["USUBJID"].map(peak["tmax"])
    after_peak = profile["DAY"] >= tmax if include_tmax else profile["DAY"] > tmax
    points = profile[after_peak & (profile["value"] > 0)]
    points = points.sort_values(["USUBJID", "DAY"], ascending=[True, False], kind="stable")
    fits = _candidate_fits(points)
    n_points = fits.groupby("USUBJID")["n"].max().reindex(subjects).fillna(0).astype(int)
    fits = fits[fits["n"] >= min_points]

    # PKNCA's rule: the best adjusted R² is taken over all candidates (whatever their slope);
    # a fit qualifies with lambda_z > 0 and an adjusted R² within the factor of that best;
    # of those, the one with the most points.
    best = fits.groupby("USUBJID")["adj_r_squared"].transform("max")
    ok = fits[(fits["lambda_z"] > 0) & (fits["adj_r_squared"] > best - adj_r_squared_factor)]
    chosen = ok.loc[ok.groupby("USUBJID")["n"].idxmax()].set_index("USUBJID")

    out = chosen.reindex(subjects)
    out = out.rename(columns={"n": "lambda_z_n_points"})
    out["half_life"] = np.log(2.0) / out["lambda_z"]
    out["span_ratio"] = (out["lambda_z_time_last"] - out["lambda_z_time_first"]) / out["half_life"]
    estimated = out["lambda_z"].notna()
    out["lambda_z_status"] = np.where(estimated, ESTIMATED, NOT_ESTIMABLE)
    out["lambda_z_reason"] = _reasons(subjects, peak.index, n_points, min_points).where(~estimated, None)
    out["lambda_z_n_points"] = out["lambda_z_n_points"].astype(float)
    return out[list(LAMBDA_Z_COLUMNS)]


def _reasons(subjects, quantifiable, n_points, min_points) -> pd.Series:
    """Why lambda_z is not estimable, per patient (read only where it is not)."""
    # filled as an array: a Series assigned through a boolean Series goes a slow way round
    why = np.full(len(subjects), "no terminal line with lambda_z > 0 within adj_r_squared_factor of the best "
                  "adjusted R² (the terminal concentrations do not decline)", dtype=object)
    counts = n_points.to_numpy()
    few = counts < min_points
    why[few] = [f"{k} quantifiable day(s) after Tmax; at least {min_points} needed" for k in counts[few]]
    why[~subjects.isin(quantifiable)] = "no quantifiable sample after day 0"
    return pd.Series(why, index=subjects, dtype=object)


def lambda_z(pk: pd.DataFrame, rules: NCARules | None = None, *, min_points: int = MIN_POINTS,
             adj_r_squared_factor: float = ADJ_R_SQUARED_FACTOR, include_tmax: bool = False,
             profile: pd.DataFrame | None = None, **overrides) -> pd.DataFrame:
    """Terminal-phase lambda_z and half-life of every patient in ``pk`` (docs/NCA.md).

    ``pk`` and ``rules`` (with keyword overrides such as ``lloq=50``) are those of
    :func:`cartlib.pk.nca.nca`; the fits read its daily profile (DAY > 0, BLQ as 0, same-day
    samples averaged), of which only the quantifiable days after Tmax up to Tlast enter.

    Returns one row per USUBJID of ``pk`` (first-appearance order), columns:
    ``lambda_z`` (1/day, the negated slope of log concentration on day), ``half_life``
    (ln 2 / lambda_z, days), ``lambda_z_n_points``, ``r_squared``, ``adj_r_squared``
    (1 − (1 − R²)(n − 1)/(n − 2)), ``lambda_z_time_first`` and ``lambda_z_time_last``
    (first and last day of the fit; the last is Tlast), ``clast_pred`` (the line at Tlast),
    ``span_ratio`` ((last − first day) / half-life), ``lambda_z_status`` (``"estimated"`` or
    ``"not estimable"``) and ``lambda_z_reason`` (None when estimated). Every number is NaN
    when not estimable. ``profile``: the :func:`cartlib.pk.nca.daily_profile` of ``pk`` under the
    same rules, when the caller has made it already.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 5 + ["B"] * 3,
    ...     "DAY": [7, 14, 21, 28, 35, 7, 14, 21],
    ...     "CONC": [1000.0, 8000, 4000, 2000, 1000, 5000, 2000, np.nan],
    ...     "BLQ_TEXT": [False] * 7 + [True]})
    >>> res = lambda_z(pk)
    >>> res.loc["A", ["half_life", "lambda_z_n_points"]].astype(float).round(6).to_dict()
    {'half_life': 7.0, 'lambda_z_n_points': 3.0}
    >>> res.loc["B", "lambda_z_status"], res.loc["B", "lambda_z_reason"]
    ('not estimable', '1 quantifiable day(s) after Tmax; at least 3 needed')
    """
    profile = daily_profile(pk, rules, **overrides) if profile is None else profile
    subjects = pd.Index(pd.unique(pk["USUBJID"].astype(str)), name="USUBJID")
    out = terminal_phase(profile, min_points=min_points, adj_r_squared_factor=adj_r_squared_factor,
                         include_tmax=include_tmax).reindex(subjects)
    out["lambda_z_status"] = out["lambda_z_status"].fillna(NOT_ESTIMABLE)
    no_sample = ~subjects.isin(profile["USUBJID"])
    out["lambda_z_reason"] = out["lambda_z_reason"].astype(object).where(~no_sample, "no sample after day 0")
    return out


def lambda_z_profile(days, conc, *, min_points: int = MIN_POINTS,
                     adj_r_squared_factor: float = ADJ_R_SQUARED_FACTOR,
                     include_tmax: bool = False) -> dict:
    """lambda_z of one profile given as numbers (BLQ rules already applied, 0 for BLQ).

    ``days`` must be distinct and finite, ``conc`` finite and >= 0; a day <= 0 is used like
    any other (the cohort functions drop pre-infusion days before they get here). Returns a
    dict with the keys of :data:`LAMBDA_Z_COLUMNS`.

    >>> fit = lambda_z_profile([1, 2, 4, 8, 12], [10, 40, 20, 5, 1.25])
    >>> round(fit["lambda_z"], 6), fit["lambda_z_n_points"], fit["lambda_z_time_first"]
    (0.346574, 3.0, 4.0)
    """
    t, c = profile_arrays(days, conc)
    if np.unique(t).size != t.size:
        raise ValueError("days must be distinct (average same-day samples first)")
    order = np.argsort(t, kind="stable")
    profile = pd.DataFrame({"USUBJID": "profile", "DAY": t[order], "value": c[order]})
    if profile.empty:
        return {**dict.fromkeys(LAMBDA_Z_COLUMNS, np.nan), "lambda_z_status": NOT_ESTIMABLE,
                "lambda_z_reason": "no sample"}
    row = terminal_phase(profile, min_points=min_points, adj_r_squared_factor=adj_r_squared_factor,
                         include_tmax=include_tmax).iloc[0]
    text = ("lambda_z_status", "lambda_z_reason")
    return {k: row[k] if k in text else float(row[k]) for k in LAMBDA_Z_COLUMNS}
