"""Step 3 of the calibration: documented single-patient adjustments after simulation.

Each nudge moves one model-generated value to a published one (docs/SYNTHETIC.md, step 3); the
day chosen for a death is decided on settled Kaplan-Meier estimates (:func:`calibration.numerics.settle`),
with the earliest day winning a tie.
"""
from __future__ import annotations

import numpy as np

from cartlib.derive import DAYS_PER_MONTH
from cartlib.stats.survival import KaplanMeier
from cartlib.synth.latent import pin_ranks
from cartlib.synth.outcomes import settle_follow_up

from .numerics import settle

def nudge(s, cal):
    """Documented single-patient adjustments applied after simulation (docs/SYNTHETIC.md, step 3).

    1. the HLH patient's pre-LD MRD is the paper's 3.22 % (if already >= 1e-2);
    2. survivors' follow-up (set by their infusion dates) is pinned so that the maximum and
       the median of all OS times are the published ones;
    3. the last non-relapse death is placed on the day that brings 5-year LFS nearest the
       paper, then the last death after relapse on the day that does so for 5-year OS;
    4. the earliest death moves to the published minimum follow-up if that keeps it after
       the patient's relapse and HSCT and before the next death.

    >>> from cartlib.synth.generate import simulate_subjects
    >>> from cartlib.synth.model import load_parameters
    >>> s = simulate_subjects(np.random.default_rng(0), 50, load_parameters())
    >>> t = nudge(s, {"followup_max_day": 2968})
    >>> float(t["admin_day"][np.isnan(t["death_day"])].max())
    2968.0
    """
    s = dict(s)
    hlh = np.flatnonzero(s["hlh"])
    if hlh.size == 1 and s["mrd_preld"][hlh[0]] >= 1e-2:
        s["mrd_preld"] = s["mrd_preld"].copy()
        s["mrd_preld"][hlh[0]] = 0.0322
        s["log10_mrd_preld"] = s["log10_mrd_preld"].copy()
        s["log10_mrd_preld"][hlh[0]] = np.log10(0.0322)
    alive = np.isnan(s["death_day"])
    if alive.any() and "followup_max_day" in cal:
        s["admin_day"] = _pin_survivor_follow_up(s["admin_day"], alive, s["death_day"], cal)
    s = settle_follow_up(s)
    for endpoint, who in (("lfs", ~s["death_relapse"]), ("os", s["death_relapse"])):
        if f"{endpoint}_5y" in cal:
            _place_death(s, who & ~np.isnan(s["death_day"]), endpoint, cal[f"{endpoint}_5y"])
    dead = np.flatnonzero(~np.isnan(s["death_day"]))
    if dead.size and "followup_min_day" in cal:
        order = dead[np.argsort(s["death_day"][dead])]
        first = order[0]
        floor = np.nanmax([s["relapse_day"][first], s["hsct_day"][first], 0.0])
        ceiling = s["death_day"][order[1]] if order.size > 1 else np.inf
        if floor < cal["followup_min_day"] < ceiling:
            s["death_day"][first] = cal["followup_min_day"]
    return settle_follow_up(s)


def _survival_5y(s, endpoint):
    death = np.nan_to_num(s["death_day"], nan=np.inf)
    first = death if endpoint == "os" else np.fmin(death, np.nan_to_num(s["relapse_day"], nan=np.inf))
    event = first <= s["admin_day"]
    time = np.where(event, first, s["admin_day"])
    return KaplanMeier(ci="plain").fit(time / DAYS_PER_MONTH, event.astype(int)).survival_at(60.0)[0]


def _place_death(s, candidates, endpoint, target):
    """Move the latest death among ``candidates`` to the day (within its follow-up and after its
    relapse/HSCT) whose 5-year KM estimate of ``endpoint`` is nearest ``target``; in place."""
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        return
    i = idx[np.argmax(s["death_day"][idx])]
    lo = np.nanmax([s["relapse_day"][i], s["hsct_day"][i], 0.0]) + 30
    hi = min(s["admin_day"][i], 60 * DAYS_PER_MONTH)
    best, best_gap = s["death_day"][i], settle(abs(_survival_5y(s, endpoint) - target))
    for day in np.arange(np.ceil(lo), np.floor(hi) + 1, 3.0):
        s["death_day"][i] = day
        gap = settle(abs(_survival_5y(s, endpoint) - target))
        if gap < best_gap:
            best, best_gap = day, gap
    s["death_day"][i] = best


def _pin_survivor_follow_up(admin, alive, death_day, cal):
    """Pin survivors' administrative follow-up: the maximum, and the two middle OS times."""
    n, k = admin.size, int(alive.sum())
    pins = {1: float(admin[alive].min()), k: float(cal["followup_max_day"])}
    median = cal.get("followup_median_day")
    if median is not None and n % 2 == 0:
        below = int((death_day[~alive] < median).sum())   # deaths all come before the median
        lo, hi = n // 2 - below, n // 2 + 1 - below       # survivor ranks holding OS ranks n/2, n/2+1
        if 1 < lo and hi < k:
            pins.update({lo: median - 3.0, hi: median + 3.0})
    out = admin.copy()
    out[alive] = np.round(pin_ranks(admin[alive], pins))
    return out

