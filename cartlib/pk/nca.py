"""Non-compartmental analysis (NCA) of CAR-T transgene kinetics, per ``docs/NCA.md``.

The rules (*what* is computed over *which* interval: LLOQ, AUC method, AUC end day,
partial AUC intervals, expansion threshold) live in one frozen :class:`NCARules`; the
computation (*how*) is one grouped, vectorised pass over the whole cohort in :func:`nca`
(Cmax, Tmax, Tlast, AUC0–28d) and :func:`partial_aucs` (AUClast and the partial AUCs).
The integration itself is shared with :func:`auc_between`, which works on a single
profile. The terminal phase (lambda_z) is in :mod:`cartlib.pk.terminal`.

The linear-up/log-down integration and the interpolation at the interval ends are
written by hand (no Python library implements these BLQ and missing rules); the
method is the standard one of Phoenix WinNonlin and PKNCA (Gabrielsson & Weiner,
*Pharmacokinetic and Pharmacodynamic Data Analysis*, 5th ed., ch. 2), checked against
WinNonlin's published Theoph results in ``tests/test_nca.py``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

AUC_METHODS = ("linear-up-log-down", "linear")

#: Columns of the :func:`nca` result, in order.
NCA_COLUMNS = ("cmax", "tmax", "clast", "tlast", "auc28", "expansion",
               "baseline_conc", "n_samples", "n_blq")

#: The default partial AUC intervals, (start, end) in days after infusion.
DEFAULT_AUC_INTERVALS = ((0.0, 28.0), (0.0, 90.0))


def _day_text(day: float) -> str:
    """A day as the shortest text that reads back as the same number ('28', '12p5')."""
    text = repr(float(day))
    text = text[:-2] if text.endswith(".0") else text
    return text.replace(".", "p")


def auc_interval_name(start: float, end: float) -> str:
    """Column (and results-key) name of the partial AUC over [start, end] days.

    A decimal point is written ``p`` so that the name never holds a dot (results keys use
    dots as separators); distinct intervals always get distinct names.

    >>> auc_interval_name(0, 28), auc_interval_name(28.0, 90), auc_interval_name(0, 12.5)
    ('auc_0_28', 'auc_28_90', 'auc_0_12p5')
    """
    return f"auc_{_day_text(start)}_{_day_text(end)}"


def _checked_intervals(intervals) -> tuple[tuple[float, float], ...]:
    """Intervals as a tuple of (start, end) floats; ValueError naming the bad one."""
    try:
        pairs = [tuple(pair) for pair in intervals]
    except TypeError:
        raise ValueError(f"auc_intervals must be a list of [start, end] pairs, not {intervals!r}") from None
    out = []
    for pair in pairs:
        numbers = len(pair) == 2 and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                         for v in pair)
        try:
            start, end = (float(v) for v in pair) if numbers else (np.nan, np.nan)
        except OverflowError:   # an int beyond float range
            start = end = np.nan
        if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
            raise ValueError(f"each AUC interval must be [start, end] with 0 <= start < end, "
                             f"finite numbers of days; got {list(pair)!r}")
        out.append((start, end))
    if len(set(out)) != len(out):
        raise ValueError(f"auc_intervals names an interval twice: {[list(p) for p in out]!r}")
    return tuple(out)


@dataclass(frozen=True)
class NCARules:
    """The NCA rules of docs/NCA.md in one place (defaults are the documented ones).

    ``lloq``: a numeric CONC below it is BLQ (copies/µg); ``auc_method``:
    ``"linear-up-log-down"`` or ``"linear"``; ``auc_end_day``: the AUC interval is
    [0, auc_end_day] (the result column keeps the name ``auc28`` whatever the end
    day); ``expansion_min``: Cmax at or above it counts as effective expansion;
    ``auc_intervals``: the partial AUC intervals of :func:`partial_aucs`, (start, end)
    pairs in days (stored as a tuple of float pairs).

    >>> NCARules()  # doctest: +NORMALIZE_WHITESPACE
    NCARules(lloq=100.0, auc_method='linear-up-log-down', auc_end_day=28.0, expansion_min=1000.0,
             auc_intervals=((0.0, 28.0), (0.0, 90.0)))
    >>> NCARules(auc_intervals=[[0, 14]]).auc_intervals
    ((0.0, 14.0),)
    >>> NCARules(auc_method="log")
    Traceback (most recent call last):
    ...
    ValueError: auc_method must be one of ('linear-up-log-down', 'linear'), not 'log'
    """

    lloq: float = 100.0
    auc_method: str = "linear-up-log-down"
    auc_end_day: float = 28.0
    expansion_min: float = 1000.0
    auc_intervals: tuple = DEFAULT_AUC_INTERVALS

    @classmethod
    def from_params(cls, params) -> "NCARules":
        """The rules from a parameter mapping (``cartlib.params``), other keys ignored.

        >>> NCARules.from_params({"lloq": 50, "km_ci": "log"}).lloq
        50.0
        """
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: params[k] for k in names if k in params})

    def __post_init__(self) -> None:
        if self.auc_method not in AUC_METHODS:
            raise ValueError(f"auc_method must be one of {AUC_METHODS}, not {self.auc_method!r}")
        for name in ("lloq", "expansion_min"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
            object.__setattr__(self, name, float(value))
        if not np.isfinite(self.auc_end_day) or self.auc_end_day <= 0:
            raise ValueError(f"auc_end_day must be a finite number > 0, not {self.auc_end_day!r}")
        object.__setattr__(self, "auc_end_day", float(self.auc_end_day))
        object.__setattr__(self, "auc_intervals", _checked_intervals(self.auc_intervals))


def _log_down(c0, c1, method: str):
    """Segments integrated on the log scale: falling between two positive values."""
    return (method == "linear-up-log-down") & (c0 > 0) & (c1 > 0) & (c1 < c0)


def _interpolate(t0, c0, t1, c1, t, log_down):
    """Concentration at time t inside segments (t0, c0)-(t1, c1): log-linear or linear."""
    # Clipped: segments wholly outside the interval are evaluated at an end (their
    # area is then 0), never extrapolated into an overflow.
    frac = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
    # Differences of logs, not the log of a ratio: the ratio of a large and a tiny
    # concentration overflows. Off-branch values are discarded by np.where.
    with np.errstate(all="ignore"):
        log_c = c0 * np.exp((np.log(c1) - np.log(c0)) * frac)
    return np.where(log_down, log_c, c0 + (c1 - c0) * frac)


def _segment_areas(t0, c0, t1, c1, lo, hi, method: str) -> np.ndarray:
    """Area of each segment restricted to [lo, hi] (0 outside), arrays broadcast together.

    The segment's own interpolant (exponential on a log-down segment, else linear) gives
    the concentrations at clipped ends, so a partial area is the exact integral of that
    interpolant, and the log trapezoid dt*(Ca-Cb)/ln(Ca/Cb) stays exact on it.
    """
    t0, c0, t1, c1 = (np.asarray(a, dtype=float) for a in (t0, c0, t1, c1))
    log_down = _log_down(c0, c1, method)
    a = np.clip(t0, lo, hi)
    b = np.clip(t1, lo, hi)
    ca = _interpolate(t0, c0, t1, c1, a, log_down)
    cb = _interpolate(t0, c0, t1, c1, b, log_down)
    dt = b - a
    with np.errstate(all="ignore"):
        log_area = dt * (ca - cb) / (np.log(ca) - np.log(cb))
    area = np.where(log_down & (ca != cb), log_area, dt * (ca + cb) / 2.0)
    return np.where(dt > 0, area, 0.0)


def profile_arrays(days, conc) -> tuple[np.ndarray, np.ndarray]:
    """One profile's days and concentrations as float arrays, checked: 1-d, the same length,
    finite, concentrations >= 0 (``ValueError`` otherwise).

    >>> profile_arrays([0, 7], [0, 10])[1]
    array([ 0., 10.])
    """
    t = np.asarray(days, dtype=float)
    c = np.asarray(conc, dtype=float)
    if t.shape != c.shape or t.ndim != 1:
        raise ValueError("days and conc must be 1-d and of the same length")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(c)) and np.all(c >= 0)):
        raise ValueError("days and conc must be finite, conc >= 0")
    return t, c


def auc_between(days, conc, start: float, end: float,
                method: str = "linear-up-log-down") -> float:
    """Area under one profile from ``start`` to ``end`` (no extrapolation).

    The profile joins the points (``days``, ``conc``) in day order; concentrations at
    ``start``/``end`` that fall between samples are interpolated as in docs/NCA.md
    (log-linear on a positive falling segment with the log-down method, else linear).
    Returns NaN when [start, end] is not covered by the samples. Days must be distinct
    and concentrations finite and >= 0 (apply BLQ rules before calling).

    >>> auc_between([0, 1, 2], [0, 10, 10], 0, 2)
    15.0
    >>> round(auc_between([0, 1], [8, 4], 0, 1), 6)   # log trapezoid: 4 / ln 2
    5.77078
    >>> auc_between([0, 1, 2], [0, 10, 5], 0, 2, method="linear")
    12.5
    >>> auc_between([0, 7], [0, 10], 0, 28)
    nan
    """
    if method not in AUC_METHODS:
        raise ValueError(f"method must be one of {AUC_METHODS}, not {method!r}")
    t, c = profile_arrays(days, conc)
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    order = np.argsort(t, kind="stable")
    t, c = t[order], c[order]
    if np.any(np.diff(t) == 0):
        raise ValueError("days must be distinct (average same-day samples first)")
    if t.size == 0 or start < t[0] or end > t[-1]:
        return float("nan")
    return float(np.sum(_segment_areas(t[:-1], c[:-1], t[1:], c[1:], start, end, method)))


def _sample_values(pk: pd.DataFrame, lloq: float) -> pd.DataFrame:
    """One row per usable sample: USUBJID, DAY, value (BLQ as 0), blq flag."""
    conc = pd.to_numeric(pk["CONC"], errors="coerce").astype(float)
    blq_text = pk["BLQ_TEXT"].astype(bool) if "BLQ_TEXT" in pk else conc.isna()
    # A missing number that is not the text BLQ is no sample at all (the loader
    # normally refuses it); it must not be silently counted as a zero.
    usable = conc.notna() | blq_text
    quantifiable = conc.notna() & (conc >= lloq)
    out = pd.DataFrame({
        "USUBJID": pk["USUBJID"].astype(str),
        "DAY": pd.to_numeric(pk["DAY"]).astype(float),
        "value": conc.where(quantifiable, 0.0),
        "blq": ~quantifiable,
    })
    return out[usable.to_numpy()]


def _daily_profile(samples: pd.DataFrame) -> pd.DataFrame:
    """Same-day samples averaged (after BLQ -> 0), sorted by subject and day."""
    return (samples.groupby(["USUBJID", "DAY"], sort=True, observed=True)["value"].mean()
            .reset_index())


def _baseline(samples: pd.DataFrame) -> pd.Series:
    """Last pre-infusion (DAY <= 0) value per subject, same-day samples averaged."""
    daily = _daily_profile(samples[samples["DAY"] <= 0])
    return daily.groupby("USUBJID")["value"].last()


def peak_and_last(profile: pd.DataFrame) -> pd.DataFrame:
    """Cmax/Tmax (first day of the maximum) and Clast/Tlast over the positive days of a
    :func:`daily_profile`, indexed by USUBJID (patients without a positive day absent).

    >>> prof = pd.DataFrame({"USUBJID": ["A"] * 3, "DAY": [7.0, 14.0, 28.0],
    ...                      "value": [5.0, 5.0, 0.0]})
    >>> peak_and_last(prof).loc["A"].to_dict()
    {'cmax': 5.0, 'tmax': 7.0, 'clast': 5.0, 'tlast': 14.0}
    """
    pos = profile[profile["value"] > 0]
    by = pos.groupby("USUBJID")
    first_max = by["value"].idxmax()  # idxmax keeps the first (earliest) maximum
    peak = pos.loc[first_max.to_numpy(), ["USUBJID", "DAY", "value"]].set_index("USUBJID")
    last = by[["DAY", "value"]].last()
    return pd.DataFrame({"cmax": peak["value"], "tmax": peak["DAY"],
                         "clast": last["value"], "tlast": last["DAY"]})


def _auc_over(profile: pd.DataFrame, start, end, method: str) -> pd.Series:
    """AUC over [start, end] per subject of the profile that starts at (0, 0); ``end`` is a
    number or an array aligned with the profile rows. No extrapolation: the caller decides
    when the samples do not reach ``end``."""
    by = profile.groupby("USUBJID")
    t0 = by["DAY"].shift(1, fill_value=0.0)
    c0 = by["value"].shift(1, fill_value=0.0)
    area = _segment_areas(t0, c0, profile["DAY"], profile["value"], start, end, method)
    return pd.Series(area, index=profile.index).groupby(profile["USUBJID"]).sum()


def _auc_to_end(profile: pd.DataFrame, end: float, method: str, start: float = 0.0,
                zero_after_blq: bool = False) -> pd.Series:
    """AUC from ``start`` to ``end`` per subject; NaN when the last sample is before ``end``
    (unless ``zero_after_blq`` and that last sample is BLQ: the profile then stays at 0)."""
    by = profile.groupby("USUBJID")
    known = by["DAY"].max() >= end
    if zero_after_blq:
        known |= by["value"].last() == 0
    return _auc_over(profile, start, end, method).where(known)


def daily_profile(pk: pd.DataFrame, rules: NCARules | None = None, **overrides) -> pd.DataFrame:
    """The post-infusion profile every NCA parameter reads (docs/NCA.md, "Which samples count").

    One row per patient and DAY > 0 (columns USUBJID, DAY, value), sorted by patient and day:
    BLQ samples (the text or a number below ``rules.lloq``) count 0 and same-day samples are
    averaged afterwards. ``pk`` and the rules are as for :func:`nca`.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 4, "DAY": [-1, 7, 7, 14],
    ...                    "CONC": [500.0, 800.0, 50.0, np.nan], "BLQ_TEXT": [False, False, False, True]})
    >>> daily_profile(pk).to_dict("list")
    {'USUBJID': ['A', 'A'], 'DAY': [7.0, 14.0], 'value': [400.0, 0.0]}
    """
    rules = dataclasses.replace(rules or NCARules(), **overrides)
    samples = _sample_values(pk, rules.lloq)
    return _daily_profile(samples[samples["DAY"] > 0])


def _subjects(pk: pd.DataFrame) -> pd.Index:
    """Every USUBJID of ``pk``, in first-appearance order."""
    return pd.Index(pd.unique(pk["USUBJID"].astype(str)), name="USUBJID")


def partial_aucs(pk: pd.DataFrame, rules: NCARules | None = None, *, profile: pd.DataFrame | None = None,
                 **overrides) -> pd.DataFrame:
    """AUClast and the partial AUCs of ``rules.auc_intervals`` for every patient, per docs/NCA.md.

    Same input, rules and samples as :func:`nca` (DAY > 0, BLQ as 0, same-day samples
    averaged, the profile starting at (0, 0)). Columns, one row per USUBJID of ``pk``:

    - ``auclast``: area from day 0 to Tlast; 0 when no sample is quantifiable; NaN for a
      patient without any sample after day 0.
    - one column per interval [start, end], named by :func:`auc_interval_name` (``auc_0_28``):
      the area over the interval, ends that fall between two samples interpolated with that
      segment's rule (as ``auc28``); after Tlast the profile falls to the next (BLQ) sample
      as it does in ``auc28``. When the samples stop before ``end``: if the last one is BLQ
      the profile stays at 0 after it (the area is complete); if it is quantifiable the
      area is NaN (no extrapolation). So ``auc_0_28`` equals ``auc28`` wherever ``auc28``
      has a value, and also has one when sampling stopped on a BLQ sample before day 28.

    ``attrs["auc_intervals"]`` maps each interval column to its (start, end). ``profile``: the
    :func:`daily_profile` of ``pk`` under the same rules, when the caller has made it already.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 4, "DAY": [7, 14, 21, 35],
    ...     "CONC": [8000.0, 4000.0, 2000.0, np.nan], "BLQ_TEXT": [False, False, False, True]})
    >>> res = partial_aucs(pk, auc_method="linear", auc_intervals=[[0, 14], [14, 28], [0, 90]])
    >>> res.loc["A"].to_dict()   # 0 after the BLQ day 35: AUC0-90 = AUClast + 14 x 2000 / 2
    {'auclast': 91000.0, 'auc_0_14': 70000.0, 'auc_14_28': 31500.0, 'auc_0_90': 105000.0}
    >>> partial_aucs(pk.iloc[:3], auc_intervals=[[0, 90]])["auc_0_90"].tolist()  # ends on 2000
    [nan]
    """
    rules = dataclasses.replace(rules or NCARules(), **overrides)
    profile = daily_profile(pk, rules) if profile is None else profile
    out = pd.DataFrame(index=_subjects(pk))
    # AUClast: integrate each profile up to its own Tlast (day 0 for an all-BLQ profile,
    # which gives the area 0 of a profile that never left the floor).
    tlast = profile["USUBJID"].map(peak_and_last(profile)["tlast"]).fillna(0.0).to_numpy()
    out["auclast"] = _auc_over(profile, 0.0, tlast, rules.auc_method)
    names = {}
    for start, end in rules.auc_intervals:
        name = auc_interval_name(start, end)
        names[name] = (start, end)
        out[name] = _auc_to_end(profile, end, rules.auc_method, start=start, zero_after_blq=True)
    out.attrs.update(auc_intervals=names, auc_method=rules.auc_method)
    return out


def nca(pk: pd.DataFrame, rules: NCARules | None = None, **overrides) -> pd.DataFrame:
    """NCA of every patient in ``pk`` at once, per docs/NCA.md.

    ``pk`` is the loaded table (USUBJID, DAY, CONC float with NaN for the text BLQ,
    BLQ_TEXT bool). Rules come from ``rules`` (default :class:`NCARules`) with keyword
    overrides, e.g. ``nca(pk, lloq=50)``. Parameters use DAY > 0 samples only.

    Returns one row per USUBJID present in ``pk`` (first-appearance order), columns:
    ``cmax``, ``tmax``, ``clast``, ``tlast`` (NaN without a quantifiable sample),
    ``auc28`` (AUC from day 0 to ``rules.auc_end_day``, whatever that is; NaN when the
    last sample is before it), ``expansion`` (1 if Cmax >= expansion_min else 0, also 0
    without a quantifiable sample), ``baseline_conc`` (last DAY <= 0 value, BLQ as 0,
    NaN if none), ``n_samples`` and ``n_blq`` (DAY > 0 sample rows). ``attrs`` holds
    ``auc_end_day``, ``auc_method`` and the rules.

    A day whose averaged concentration is > 0 counts as quantifiable (a day mixing a
    quantifiable sample with a BLQ one keeps its mean, even below the LLOQ). A row with
    CONC missing but ``BLQ_TEXT`` False (which the loader refuses) is not a sample; without
    a ``BLQ_TEXT`` column every missing CONC is read as the text BLQ.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 5 + ["B"] * 2,
    ...     "DAY": [-1, 7, 14, 21, 28, 7, 28],
    ...     "CONC": [np.nan, 1000, 4000, 2000, 1000, np.nan, 50.0],
    ...     "BLQ_TEXT": [True, False, False, False, False, True, False]})
    >>> res = nca(pk, auc_method="linear")
    >>> res[["cmax", "tmax", "tlast", "auc28", "expansion", "n_blq"]]  # doctest: +NORMALIZE_WHITESPACE
               cmax  tmax  tlast    auc28  expansion  n_blq
    USUBJID
    A        4000.0  14.0   28.0  52500.0          1      0
    B           NaN   NaN    NaN      0.0          0      2
    >>> res.attrs["auc_end_day"]
    28.0
    """
    rules = dataclasses.replace(rules or NCARules(), **overrides)
    samples = _sample_values(pk, rules.lloq)
    subjects = _subjects(pk)
    post = samples[samples["DAY"] > 0]
    profile = _daily_profile(post)

    out = peak_and_last(profile).reindex(subjects)
    out["auc28"] = _auc_to_end(profile, rules.auc_end_day, rules.auc_method)
    out["expansion"] = (out["cmax"] >= rules.expansion_min).astype(int)
    out["baseline_conc"] = _baseline(samples)
    counts = post.groupby("USUBJID")["blq"].agg(["size", "sum"])
    out["n_samples"] = counts["size"]
    out["n_blq"] = counts["sum"]
    out[["n_samples", "n_blq"]] = out[["n_samples", "n_blq"]].fillna(0).astype(int)
    out = out[list(NCA_COLUMNS)]
    out.attrs.update(auc_end_day=float(rules.auc_end_day), auc_method=rules.auc_method,
                     rules=dataclasses.asdict(rules))
    return out
