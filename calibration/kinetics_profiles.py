"""The kinetics stage's profile family (:mod:`calibration.fit_kinetics`, step 4): the model's
shape (exponential rise to Cmax at Tmax, biphasic decline to ~1.5 x LLOQ at Tlast) sampled on a
patient's visit days, solved for a given AUC0-28d, and the visit windows of the qPCR schedule.
"""
from __future__ import annotations

import numpy as np

from cartlib.pk.nca import auc_between

C0 = 10.0            # copies/ug at day 0 of the rising phase
PERSIST_FRACTION = 0.05
CLAST_FACTOR = 1.5   # persistence level at Tlast, in LLOQ

def profile_auc(days, conc, end=28.0):
    t = np.r_[0.0, days]
    c = np.r_[0.0, conc]
    if t[-1] < end:
        return np.nan
    return auc_between(t, c, 0.0, end)


def profile(days, cmax, tmax, tlast, alpha, frac, lloq):
    """Sample values (rounded; 0 = BLQ) of the rise / biphasic-decline curve."""
    k = np.log(max(cmax, C0 * 1.001) / C0) / max(tmax, 1e-9)
    ell = min(CLAST_FACTOR * lloq, cmax)
    p0 = min(max(frac * cmax, ell), cmax)
    span = tlast - tmax
    beta = np.log(p0 / ell) / span if span > 0 and p0 > ell else 0.0
    s = days - tmax
    fall = (cmax - p0) * np.exp(-alpha * np.clip(s, 0, None)) + p0 * np.exp(-beta * np.clip(s, 0, None))
    c = np.where(days < tmax, cmax * np.exp(-k * np.clip(tmax - days, 0, None)), fall)
    c = np.where(days == tmax, cmax, np.minimum(c, cmax))
    c = np.where(days > tlast, 0.0, np.round(c))
    c = np.where((days <= tlast) & (days >= tmax), np.maximum(c, min(lloq, cmax)), c)
    return np.where(c < lloq, 0.0, c)


def solve_profile(days, cmax, tmax, tlast, auc, lloq):
    """Fast rate (and persistence fraction if needed) whose profile has AUC0-28d nearest ``auc``."""
    best = None
    for frac in (PERSIST_FRACTION, 0.02, 0.005, 0.0, 0.15, 0.3):
        def f(la):
            return np.log(profile_auc(days, profile(days, cmax, tmax, tlast, np.exp(la), frac, lloq), 28.0)) - np.log(auc)
        lo, hi = np.log(1e-4), np.log(30.0)
        flo, fhi = f(lo), f(hi)
        if flo >= 0 >= fhi:
            for _ in range(60):
                mid = (lo + hi) / 2
                if f(mid) > 0:
                    lo = mid
                else:
                    hi = mid
            la = lo if abs(f(lo)) < abs(f(hi)) else hi
            return profile(days, cmax, tmax, tlast, np.exp(la), frac, lloq)
        cand = (lo, flo) if abs(flo) < abs(fhi) else (hi, fhi)
        if best is None or abs(cand[1]) < abs(best[2]):
            best = (frac, cand[0], cand[1])
    return profile(days, cmax, tmax, tlast, np.exp(best[1]), best[0], lloq)


def ratio_bounds(days, tmax, lloq, j, tl, c=3e4):
    """log(AUC/Cmax) range the profile family can give with Tlast ``tl`` at visit ``j``."""
    days = days.copy()
    days[j] = tl
    lo = profile_auc(days, profile(days, c, tmax, tl, 30.0, 0.0, lloq)) / c
    hi = profile_auc(days, profile(days, c, tmax, tl, 1e-4, 0.3, lloq)) / c
    lo, hi = np.log(lo) + 0.05, np.log(hi) - 0.05
    return (lo, hi) if lo <= hi else ((lo + hi) / 2,) * 2


def visit_windows(params):
    k = params["kinetics"]
    nom = np.asarray(k["schedule_days"], float)
    jit = np.asarray(k["schedule_jitter"], float)
    lo = np.where(jit == 0.5, np.floor(nom), nom - jit)
    hi = np.where(jit == 0.5, np.ceil(nom), nom + jit)
    return nom, lo, hi


def visit_days(existing, lo, hi, nom):
    """Each visit's day: the patient's existing sample day in the window, else the nominal day."""
    days = np.floor(nom).copy()
    for j in range(nom.size):
        inside = existing[(existing >= lo[j]) & (existing <= hi[j])]
        if inside.size:
            days[j] = inside[0]
    return days
