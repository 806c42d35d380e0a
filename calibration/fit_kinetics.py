"""Calibration stage on the finished tables: the paper's Table 3 (kinetics by subgroup).

Runs after :func:`cartlib.synth.generate.finalize`. Group memberships (age, sex, MRD, CRS,
HSCT day, death, ...) are fixed inputs; what moves is which model-generated Cmax / AUC0-28d
goes to which patient (permutations), an order-preserving map of the sorted values, and each
patient's Tlast among the days its own visit schedule allows. Targets come from
``paper.yaml`` only. Every figure enters the objective in units of its tolerance with a
hinge a little inside it (inside = ~0) plus a small pull to the exact value.

1. **Tlast** (realisable days only): a patient's Tlast is an integer day inside one of its
   visit jitter windows, >= Tmax and <= min(HSCT day, last contact / death). A MILP (HiGHS)
   picks days so that every subgroup median is within +-3 days (linear counts of members
   below / above each window; penalised slack reports conflicts, whose levels then only
   softly count), staying near the model's visit and pulling long Tlast toward long B-cell
   aplasia. Simulated annealing (seeded restarts; moves: swap two patients' Tlast visits,
   another day in the window, the neighbouring visit) then brings the Mann-Whitney p's
   (exact normal approximation with ties and continuity correction, as ``evaluate``) and the
   BCA correlation in, scoring the exact medians; a greedy pass finishes. Ties are seen.
2. **Cmax / AUC ranks**: a MILP over value bands (cut at the median windows' ends) gives
   ranks for which an order-preserving map can put every subgroup median inside its window
   (the overall Cmax median pinned; non-MRD-CR patients keep the two lowest Cmax). Then
   annealing over rank swaps scores the Mann-Whitney p's, the median-order feasibility
   (pairs of levels whose median order statistics are ordered must have compatible
   windows), the Spearman correlations with Tlast, a Cmax-AUC rank concordance >= 0.85 and
   AUC/Cmax ratios each profile can realise; a greedy pair-swap pass finishes.
3. **Values** (a linear program, HiGHS, order kept with a minimum gap): the sorted model
   values are moved as little as possible (relative) so that each subgroup median (one
   order statistic, or the mean of two) lies within 0.095 (log) of the paper, pulled to
   0.06, with the overall Cmax median (exact) and maximum pinned, the non-MRD-CR Cmax kept
   and the AUC/Cmax ratios realisable. Steps 2-3 alternate ``rounds`` times.
4. **Profiles**: each patient's post-infusion qPCR samples are rewritten with the model's
   shape (exponential rise to Cmax at Tmax, biphasic decline: fast phase plus a
   persistence phase that reaches ~1.5 x LLOQ at Tlast, BLQ afterwards); the fast rate is
   solved so that AUC0-28d is the assigned one; the Tlast visit is moved to its day;
   sampling stops after two consecutive BLQ after day 28.

Documented nudge: the non-MRD-CR patient with the larger Cmax swaps Tmax with a day-7 peaker
and then peaks at the day-4 visit (the paper's Tmax range 4-21 and its non-MRD-CR AUC median
need an early, flat low-level profile).

Known conflict (default cohort): pre-LD MRD >= 1e-2 (SYN-05, -06, -10, -37, -46; Tlast
median 60) and post-LD MRD >= 1e-2 (SYN-05, -06, -10; median 50) cannot both be met within
+-3 days: SYN-06 (HSCT day 55) can reach at most day 51 and SYN-46 (HSCT day 40) day 40, so
a pre-LD median >= 57 needs SYN-05, -10 and -37 all >= 57, and then the post-LD median is
min(SYN-05, SYN-10) >= 57 > 53. The MILP reports it; the post-LD figure is kept.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cartlib.analysis import analysis_table
from cartlib.params import defaults
from cartlib.synth.kinetics import stop_after_two_blq
from cartlib.synth.model import load_parameters

from .figures import as_cohort, paper_figures
from .kinetics_milp import band_milp, fit_values, tlast_milp
from .kinetics_objective import Table3Scorer, table3_groups, table3_targets
from .kinetics_profiles import profile_auc, ratio_bounds, solve_profile, visit_days, visit_windows


def _anneal(scorer, state, v, free0, room, rng, iterations, t0=2.0, t1=0.005, moves=tuple(range(7)),
            tlast_only=False):
    """Simulated annealing (seeded) over moves between patients: 0 swap Cmax ranks, 1 swap AUC
    ranks, 2 swap both, 3 swap Tlast visits, 4 another day in the Tlast visit's window,
    5 the neighbouring visit, 6 swap all three. ``tlast_only``: score the Tlast part only."""
    R0, R1, T, vi = (x.copy() for x in state)
    rlo, rhi = room
    n = R0.size
    allp = np.arange(n)
    pt, tc = scorer.part_t(T, vi)
    p0, p1 = scorer.part_r(0, R0, v), scorer.part_r(1, R1, v)
    px = 0.0 if tlast_only else scorer.part_x(R0, R1, vi, v, tc)
    if tlast_only:
        p0 = p1 = 0.0
    cur = pt + p0 + p1 + px
    best, best_state = cur, (R0.copy(), R1.copy(), T.copy(), vi.copy())
    temps = t0 * (t1 / t0) ** (np.arange(iterations) / max(iterations - 1, 1))
    kinds = np.asarray(moves)[rng.integers(0, len(moves), iterations)]
    picks = rng.random((iterations, 3))
    accept = rng.random(iterations)
    for it in range(iterations):
        k = kinds[it]
        pool = free0 if k in (0, 2, 6) else allp
        i, j = pool[(picks[it, :2] * pool.size).astype(int)]
        if i == j and k not in (4, 5):
            continue
        old = (R0[i], R0[j], R1[i], R1[j], T[i], T[j], vi[i], vi[j])
        if k in (3, 6):
            a, b = vi[j], vi[i]
            if rlo[i, a] > rhi[i, a] or rlo[j, b] > rhi[j, b]:
                continue
            T[i], T[j] = min(max(T[j], rlo[i, a]), rhi[i, a]), min(max(T[i], rlo[j, b]), rhi[j, b])
            vi[i], vi[j] = a, b
        elif k == 4:
            lo_, hi_ = rlo[i, vi[i]], rhi[i, vi[i]]
            if hi_ <= lo_:
                continue
            T[i] = lo_ + int(picks[it, 2] * (hi_ - lo_ + 1))
        elif k == 5:
            a = vi[i] + (1 if picks[it, 2] < 0.5 else -1)
            if a < 0 or a >= rlo.shape[1] or rlo[i, a] > rhi[i, a]:
                continue
            vi[i] = a
            T[i] = min(max(T[i], rlo[i, a]), rhi[i, a])
        if k in (0, 2, 6):
            R0[i], R0[j] = R0[j], R0[i]
        if k in (1, 2, 6):
            R1[i], R1[j] = R1[j], R1[i]
        nt, ntc = scorer.part_t(T, vi) if k >= 3 else (pt, tc)
        n0 = scorer.part_r(0, R0, v) if k in (0, 2, 6) else p0
        n1 = scorer.part_r(1, R1, v) if k in (1, 2, 6) else p1
        nx = 0.0 if tlast_only else scorer.part_x(R0, R1, vi, v, ntc)
        new = nt + n0 + n1 + nx
        if new <= cur or accept[it] < np.exp((cur - new) / temps[it]):
            cur, pt, tc, p0, p1, px = new, nt, ntc, n0, n1, nx
            if cur < best:
                best, best_state = cur, (R0.copy(), R1.copy(), T.copy(), vi.copy())
        else:
            R0[i], R0[j], R1[i], R1[j], T[i], T[j], vi[i], vi[j] = old
    return best_state, best


def _descend(scorer, state, v, free0, sweeps=3):
    """Greedy descent over all pair swaps of Cmax, AUC and both ranks (deterministic polish)."""
    R0, R1, T, vi = (x.copy() for x in state)
    _, tc = scorer.part_t(T, vi)
    cur = scorer.part_r(0, R0, v) + scorer.part_r(1, R1, v) + scorer.part_x(R0, R1, vi, v, tc)
    n = R0.size
    is_free = np.zeros(n, bool)
    is_free[free0] = True
    for _ in range(sweeps):
        improved = False
        for i in range(n):
            for j in range(i + 1, n):
                for k in (0, 1, 2):
                    if k != 1 and not (is_free[i] and is_free[j]):
                        continue
                    if k != 1:
                        R0[i], R0[j] = R0[j], R0[i]
                    if k != 0:
                        R1[i], R1[j] = R1[j], R1[i]
                    new = scorer.part_r(0, R0, v) + scorer.part_r(1, R1, v) + scorer.part_x(R0, R1, vi, v, tc)
                    if new < cur - 1e-12:
                        cur, improved = new, True
                    else:
                        if k != 1:
                            R0[i], R0[j] = R0[j], R0[i]
                        if k != 0:
                            R1[i], R1[j] = R1[j], R1[i]
        if not improved:
            break
    return R0, R1, T, vi


def _descend_t(scorer, state, room, sweeps=4):
    """Greedy descent on Tlast: every patient's other realisable days, and visit swaps."""
    R0, R1, T, vi = (x.copy() for x in state)
    rlo, rhi = room
    n, J = rlo.shape
    cur = scorer.part_t(T, vi)[0]
    for _ in range(sweeps):
        improved = False
        for i in range(n):
            for j in range(J):
                for d in range(rlo[i, j], rhi[i, j] + 1):
                    if d == T[i]:
                        continue
                    old = T[i], vi[i]
                    T[i], vi[i] = d, j
                    new = scorer.part_t(T, vi)[0]
                    if new < cur - 1e-12:
                        cur, improved = new, True
                    else:
                        T[i], vi[i] = old
        for i in range(n):
            for k in range(i + 1, n):
                a, b = vi[k], vi[i]
                if a == b or rlo[i, a] > rhi[i, a] or rlo[k, b] > rhi[k, b]:
                    continue
                old = T[i], T[k], vi[i], vi[k]
                T[i], T[k] = min(max(T[k], rlo[i, a]), rhi[i, a]), min(max(T[i], rlo[k, b]), rhi[k, b])
                vi[i], vi[k] = a, b
                new = scorer.part_t(T, vi)[0]
                if new < cur - 1e-12:
                    cur, improved = new, True
                else:
                    T[i], T[k], vi[i], vi[k] = old
        if not improved:
            break
    return (R0, R1, T, vi), cur


# --- the stage ----------------------------------------------------------------------------

def fit_kinetics(tables, figures=None, *, seed=1, iterations=6000, iterations_t=12000, rounds=3,
                 restarts=2, restarts_r=2, descend=True, params=None, details=None):
    """Reassign and reshape the qPCR profiles so that Table 3 matches the paper (module doc).

    ``tables``: the finished contract tables (after ``finalize``); returns new tables (the
    input is not modified). ``figures``: paper.yaml rows (default :func:`paper_figures`).
    The search: ``seed`` (all randomness), ``iterations_t`` annealing steps for Tlast in
    each of ``restarts`` seeded restarts (best kept); ``iterations`` steps per round and
    ``rounds`` rounds for the Cmax/AUC ranks in each of ``restarts_r`` restarts (values
    refitted by the LP after each round; ``descend``: a greedy pair-swap polish). A no-op when
    targets are missing. ``details``: an optional dict, filled with ``assigned`` (USUBJID ->
    Cmax, Tmax, Tlast, AUC0-28d of the rewritten profile), ``target`` (the values asked of
    the profiles), ``score`` (the objective's parts), ``lp_slack`` (median / ratio slack of
    each LP) and ``state`` (ranks, Tlast days, visit indices, values, scorer).
    """
    params = params or load_parameters()
    figures = figures if figures is not None else paper_figures()
    lloq = float(params["kinetics"]["lloq"])
    out = {k: v.copy() for k, v in tables.items()}
    a = analysis_table(as_cohort(tables), defaults())
    ids = a.index.astype(str).to_numpy()
    n = ids.size
    if n < 4 or a[["cmax", "auc28", "tlast", "tmax"]].isna().any().any():
        return out
    levels, rows = table3_groups(a)
    med_t, p_t, corr_t, pins = table3_targets(figures, levels, rows)
    if np.isnan(med_t).all():
        return out

    # fixed per-patient inputs
    tmax = a["tmax"].to_numpy(float).copy()
    neg = a["d28_mrd_neg"].to_numpy(float) == 1
    cmax0 = a["cmax"].to_numpy(float)
    hsct = a["hsct_day"].to_numpy(float)
    death = a["death_day"].to_numpy(float)
    last = np.fmin(a["LAST_CONTACT_DAY"].to_numpy(float), np.nan_to_num(death, nan=np.inf))
    cap = np.fmin(last, np.nan_to_num(hsct, nan=np.inf))
    bca = a["bca_duration_days"].fillna(0).to_numpy(float)
    nom, wlo, whi = visit_windows(params)
    pk = out["pk"]
    day_all = pk["DAY"].to_numpy(float)
    sid = pk["USUBJID"].astype(str).to_numpy()
    visits = {}
    for i, u in enumerate(ids):
        ex = np.sort(day_all[(sid == u) & (day_all > 0)])
        v = visit_days(ex, wlo, whi, nom)
        visits[u] = v[v <= last[i]]

    # nudge: the non-MRD-CR patient with the larger Cmax peaks early (Tmax 4, the paper's minimum)
    tmin = pins["pk.tmax_min"]
    nonresp = np.flatnonzero(~neg)
    if nonresp.size and not np.isnan(tmin) and np.nanmin(tmax) > tmin:
        i = nonresp[np.argmax(cmax0[nonresp])]
        if tmax[i] > 7:
            partners = np.flatnonzero(neg & (tmax == 7))
            if partners.size:
                j = partners[0]
                tmax[i], tmax[j] = tmax[j], tmax[i]
        if tmin in visits[ids[i]]:
            tmax[i] = tmin

    # realisable Tlast days: patient i, visit j -> integer days [rlo, rhi] (empty if rlo > rhi)
    J = nom.size
    rlo = np.full((n, J), 1, np.int64)
    rhi = np.full((n, J), 0, np.int64)
    lo_r, hi_r = np.zeros((n, J)), np.zeros((n, J))
    for i, u in enumerate(ids):
        m = visits[u].size
        for j in range(min(m, J)):
            lo_, hi_ = int(np.ceil(max(wlo[j], tmax[i]))), int(np.floor(min(whi[j], cap[i])))
            rlo[i, j], rhi[i, j] = lo_, hi_
        for j in range(J):
            if rlo[i, j] <= rhi[i, j] and nom[j] <= 100:
                lo_r[i, j], hi_r[i, j] = ratio_bounds(visits[u], tmax[i], lloq, j, (rlo[i, j] + rhi[i, j]) // 2,
                                                       3e4 if neg[i] else cmax0[i])
            elif j > 0:
                lo_r[i, j], hi_r[i, j] = lo_r[i, j - 1], hi_r[i, j - 1]
    T0 = a["tlast"].to_numpy(float)
    vi0 = np.zeros(n, np.int64)
    for i in range(n):
        ok = np.flatnonzero((rlo[i] <= rhi[i]) & (wlo <= T0[i] + 0.5) & (whi >= T0[i] - 0.5))
        if ok.size == 0:
            ok = np.flatnonzero(rlo[i] <= rhi[i])
            ok = ok[np.argmin(np.abs(nom[ok] - T0[i]))] if ok.size else np.array([0])
        vi0[i] = np.atleast_1d(ok)[0]
    T0 = np.clip(np.round(T0), rlo[np.arange(n), vi0], rhi[np.arange(n), vi0]).astype(float)

    scorer = Table3Scorer(levels, rows, med_t, p_t, corr_t, bca, pins["pk.cmax_median"], lo_r, hi_r, vi0)
    base = [np.sort(a[s].to_numpy(float)) for s in ("cmax", "auc28")]
    R0 = np.argsort(np.argsort(cmax0, kind="stable"), kind="stable")
    R1 = np.argsort(np.argsort(a["auc28"].to_numpy(float), kind="stable"), kind="stable")
    free0 = np.flatnonzero(neg)                 # non-MRD-CR patients keep the lowest Cmax
    n_fixed = int((~neg).sum()) if np.all(R0[~neg] < (~neg).sum()) else 0
    if n_fixed == 0:
        free0 = np.arange(n)

    lp_slack = []

    def refit(st):
        v, slack = fit_values(base, st[0], st[1], st[3], levels, med_t, pins, n_fixed, (lo_r, hi_r))
        lp_slack.append(slack)
        return v

    room = (rlo, rhi)
    start = tlast_milp(scorer, room, vi0, scorer.bca_c)
    if start is None:
        start = (T0, vi0)
    else:                                       # medians the MILP shows in conflict: soft only
        start, conflict = start
        scorer.med_w[conflict] = 0.05
    best = None                                 # 1. Tlast alone: restarts, keep the best
    for r in range(max(restarts, 1)):
        rng = np.random.default_rng([seed, r])
        st, sc = _anneal(scorer, (R0, R1) + tuple(start), base, free0, room, rng, iterations_t, t0=0.3,
                         moves=(3, 4, 5), tlast_only=True)
        st, sc = _descend_t(scorer, st, room, sweeps=1)
        if best is None or sc < best[1]:
            best = (st, sc)
    st = best[0]
    # 2. ranks: start from order-feasible ranks (band MILPs), anneal given Tlast, refit values
    fixed_lo = np.zeros(n, bool)
    fixed_lo[~neg] = n_fixed > 0
    b0 = band_milp(scorer, 0, cmax0, fixed_lo, pins["pk.cmax_median"])
    b1 = band_milp(scorer, 1, a["auc28"].to_numpy(float), np.zeros(n, bool))
    st = (b0[0] if b0 is not None else st[0], b1[0] if b1 is not None else st[1], st[2], st[3])
    best = None
    for r in range(max(restarts_r, 1)):
        rng = np.random.default_rng([seed, 1000 + r])
        s2 = st
        v = refit(s2)
        for k in range(rounds):
            s2, _ = _anneal(scorer, s2, v, free0, room, rng, iterations, t0=0.5 if k == 0 else 0.2,
                            moves=(0, 1, 2))
            v = refit(s2)
        if descend:
            s2 = _descend(scorer, s2, v, free0)
            v = refit(s2)
        sc = scorer(*s2, v) + 100.0 * lp_slack[-1][0]   # medians the LP could not place count too
        if best is None or sc < best[0]:
            best = (sc, s2, v)
    _, (R0, R1, T, vi), v = best
    cmax = np.round(v[0][R0])
    cmax[~neg] = cmax0[~neg]
    med = pins["pk.cmax_median"]
    if n % 2 == 0 and not np.isnan(med):         # the overall median exactly (pinned pair)
        lo_i, hi_i = (np.flatnonzero(R0 == r)[0] for r in (n // 2 - 1, n // 2))
        if cmax[lo_i] < med and 2 * med - cmax[lo_i] < np.sort(cmax)[n // 2 + 1]:
            cmax[hi_i] = 2 * med - cmax[lo_i]
    auc = v[1][R1]

    # rewrite the samples
    keep_pre = pk[pk["DAY"] <= 0]
    parts = [keep_pre]
    assigned = {}
    for i, u in enumerate(ids):
        days = visits[u].copy()
        days[vi[i]] = T[i]
        tl = T[i]
        conc = solve_profile(days, cmax[i], tmax[i], tl, auc[i], lloq)
        quant = (conc >= lloq) | (days <= 28)      # the stopping rule applies after day 28
        taken = stop_after_two_blq(quant[None, :], np.ones((1, days.size), bool))[0]
        d, c = days[taken], conc[taken]
        parts.append(pd.DataFrame({"USUBJID": u, "DAY": d.astype(np.int64),
                                   "CONC": [int(x) if x >= lloq else "BLQ" for x in c]}))
        assigned[u] = (cmax[i], tmax[i], tl, profile_auc(d, np.where(c >= lloq, c, 0.0)))
    new = pd.concat(parts, ignore_index=True)
    new = new.sort_values(["USUBJID", "DAY"], kind="stable").reset_index(drop=True)
    new["DAY"] = new["DAY"].astype(np.int64)
    new["CONC"] = new["CONC"].astype(object)
    out["pk"] = new[list(pk.columns)]
    if details is not None:
        details["assigned"] = assigned
        details["score"] = scorer.parts(R0, R1, T, vi, v)
        details["lp_slack"] = lp_slack
        details["state"] = (R0, R1, T, vi, v, scorer)
        details["target"] = {u: (cmax[i], auc[i], T[i]) for i, u in enumerate(ids)}
    return out
