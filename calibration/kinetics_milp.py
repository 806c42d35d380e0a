"""The kinetics stage's linear programs (:mod:`calibration.fit_kinetics`, steps 1-3; HiGHS through
scipy): Tlast days whose subgroup medians sit inside their windows, Cmax/AUC value bands, and the
order-kept values.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, sparse

def tlast_milp(scorer, room, vi0, bca_c, lam=0.5):
    """Tlast days whose subgroup medians all sit inside +-3 days of the paper (MILP, HiGHS).

    One binary per (patient, realisable day); a level's median is inside [t - 3, t + 3] when at
    most ``lo`` members lie below and at most ``n - 1 - hi`` above the window (linear counts;
    slack columns, heavily penalised, keep it solvable when targets conflict). The objective
    keeps the visit near the model's and pulls long Tlast toward long B-cell aplasia.
    Returns ``None`` when HiGHS finds no solution.
    """
    rlo, rhi = room
    n, J = rlo.shape
    cols = [(i, j, d) for i in range(n) for j in range(J) for d in range(rlo[i, j], rhi[i, j] + 1)]
    m = len(cols)
    ci = np.array([c[0] for c in cols]); cj = np.array([c[1] for c in cols]); cd = np.array([c[2] for c in cols], float)
    K = scorer.L.shape[0]
    ok = scorer.med_ok[:, 2]
    t = scorer.med_t[:, 2]
    owner = []
    # one day per patient
    A1 = sparse.csr_matrix((np.ones(m), (ci, np.arange(m))), shape=(n, m))
    # counts below / above each level's window (+ slack columns)
    data, ri, cc = [], [], []
    ub = []
    r = 0
    for k in range(K):
        if not ok[k]:
            continue
        mem = scorer.L[k][ci]
        for sel, lim in (((cd < t[k] - 3) & mem, scorer.lo[k]), ((cd > t[k] + 3) & mem, scorer.nk[k] - 1 - scorer.hi[k])):
            idx = np.flatnonzero(sel)
            data += [1.0] * idx.size; ri += [r] * idx.size; cc += list(idx)
            data.append(-1.0); ri.append(r); cc.append(m + r)
            ub.append(lim); r += 1
            owner.append(k)
    A2 = sparse.csr_matrix((data, (ri, cc)), shape=(r, m + r))
    A = sparse.vstack([sparse.hstack([A1, sparse.csr_matrix((n, r))]), A2]).tocsr()
    lo = np.r_[np.ones(n), np.full(r, -np.inf)]
    hi = np.r_[np.ones(n), np.array(ub, float)]
    rank_proxy = np.log(cd)
    cost = np.r_[0.1 * np.abs(cj - vi0[ci]) - lam * bca_c[ci] / np.abs(bca_c).max() * rank_proxy, np.full(r, 100.0)]
    integ = np.r_[np.ones(m), np.ones(r)]
    res = optimize.milp(cost, constraints=optimize.LinearConstraint(A, lo, hi), integrality=integ,
                        bounds=optimize.Bounds(0, np.r_[np.ones(m), np.full(r, np.inf)]),
                        options={"node_limit": 300, "time_limit": 120.0})
    if res.x is None:
        return None
    x = res.x[:m] > 0.5
    T = np.zeros(n); vi = np.zeros(n, np.int64)
    T[ci[x]] = cd[x]; vi[ci[x]] = cj[x]
    conflict = sorted({owner[q] for q in np.flatnonzero(res.x[m:] > 0.5)})
    return (T, vi), conflict


def band_milp(scorer, j, current, fixed, pin=np.nan, relax=False):
    """Ranks of one parameter whose subgroup medians can all be put inside 0.09 (log) of the
    paper by an order-preserving map (MILP over value bands, HiGHS).

    The window end points cut the value axis into bands; one binary per (patient, band); a
    level's median lies in its window when at most ``lo`` members are in bands below and at
    most ``n - 1 - hi`` above (``relax``: the necessary counts ``hi`` / ``n - 1 - lo``, whose
    infeasibility proves that no assignment exists). The pinned overall median splits the
    cohort in two halves; ``fixed`` patients keep the lowest values. The objective keeps each
    patient near its ``current`` value; slack columns (penalised) report conflicts. Returns
    (ranks, total slack) or ``None``.
    """
    s = scorer
    n = current.size
    ok = s.med_ok[:, j] & ~np.array([m[fixed].all() and m.sum() == fixed.sum() for m in s.L])
    t = np.log(s.med_t[ok, j])
    cuts = np.unique(np.r_[t - 0.09, t + 0.09, [np.log(pin)] if not np.isnan(pin) else []])
    B = cuts.size + 1
    lo_b = np.r_[-np.inf, cuts]                 # band b = (lo_b[b], hi_b[b])
    hi_b = np.r_[cuts, np.inf]
    ii, bb = np.divmod(np.arange(n * B), B)
    m = n * B
    rows, rl, ru = [], [], []
    for i in range(n):
        rows.append((np.arange(B) + i * B, np.ones(B))); rl.append(1); ru.append(1)
    soft = []
    L = s.L[ok]
    lo_i, hi_i, nk = s.lo[ok], s.hi[ok], s.nk[ok]
    for k in range(L.shape[0]):
        mem = L[k][ii]
        lim_below = hi_i[k] if relax else lo_i[k]
        lim_above = nk[k] - 1 - (lo_i[k] if relax else hi_i[k])
        for sel, lim in (((hi_b[bb] <= t[k] - 0.09 + 1e-12) & mem, lim_below), ((lo_b[bb] >= t[k] + 0.09 - 1e-12) & mem, lim_above)):
            idx = np.flatnonzero(sel)
            rows.append((idx, np.ones(idx.size))); rl.append(-np.inf); ru.append(lim)
            soft.append(len(rows) - 1)
    if not np.isnan(pin):
        idx = np.flatnonzero(hi_b[bb] <= np.log(pin) + 1e-12)
        rows.append((idx, np.ones(idx.size))); rl.append(n // 2); ru.append(n // 2)
    ns = len(soft)
    data, r_i, c_i = [], [], []
    for r, (idx, val) in enumerate(rows):
        data += list(val); r_i += [r] * len(idx); c_i += list(idx)
    for q, r in enumerate(soft):
        data.append(-1.0); r_i.append(r); c_i.append(m + q)
    A = sparse.csr_matrix((data, (r_i, c_i)), shape=(len(rows), m + ns))
    lc = np.log(current)
    dist = np.maximum(0, lo_b[bb] - lc[ii]) + np.maximum(0, lc[ii] - hi_b[bb])
    ub = np.ones(m)
    ub[np.isin(ii, np.flatnonzero(fixed)) & (bb > 0)] = 0
    cost = np.r_[dist, np.full(ns, 100.0)]
    res = optimize.milp(cost, constraints=optimize.LinearConstraint(A, np.array(rl, float), np.array(ru, float)),
                        integrality=np.r_[np.ones(m), np.zeros(ns)],
                        bounds=optimize.Bounds(0, np.r_[ub, np.full(ns, np.inf)]),
                        options={"node_limit": 500, "time_limit": 120.0})
    if res.x is None:
        return None
    band = np.argmax(res.x[:m].reshape(n, B), axis=1)
    order = np.lexsort((current, band))
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n)
    return ranks, float(res.x[m:].sum())


def fit_values(base, R0, R1, vi, levels, med_t, pins, n_fixed, ratio):
    """Order-kept values of Cmax and AUC from one linear program (HiGHS).

    Variables are the sorted values (as multiples of the model's sorted values); the order
    is kept with a minimum gap; each subgroup median (one order statistic, or the mean of
    two) is held inside 0.08 of the paper's value on the log scale (soft, heavily
    penalised), the overall Cmax median and maximum are pinned, the non-MRD-CR Cmax values
    are kept, every patient's AUC/Cmax stays inside what its profile can realise (soft), and
    the objective is the total relative move away from the model's values plus a small pull
    of each median to the paper's value.
    """
    n = R0.size
    lo_r, hi_r = ratio
    meds = []
    for j, R in ((0, R0), (1, R1)):
        for (_, _, m), t in zip(levels, med_t[:, j]):
            if np.isnan(t):
                continue
            rk = np.sort(R[m])
            k = rk.size
            meds.append((j, rk[(k - 1) // 2], rk[k // 2], t))
    M = len(meds)
    # x = [y0 (n), y1 (n), d0 (n), d1 (n), s (M), q (M), rlo (n), rhi (n)]
    nv = 4 * n + 2 * M + 2 * n
    iy = lambda j, k: j * n + k
    idd = lambda j, k: 2 * n + j * n + k
    A, lb, ub = [], [], []

    def row(entries, lo_, hi_):
        r = np.zeros(nv)
        for c, w in entries:
            r[c] += w
        A.append(r), lb.append(lo_), ub.append(hi_)

    for j in (0, 1):
        b = base[j]
        for k in range(n):
            row([(iy(j, k), 1.0), (idd(j, k), -1.0)], -np.inf, 1.0)
            row([(iy(j, k), 1.0), (idd(j, k), 1.0)], 1.0, np.inf)
            if k + 1 < n:
                gap = max(2.0, 1e-3 * b[k]) if j == 0 else 1e-3 * b[k]
                row([(iy(j, k + 1), b[k + 1]), (iy(j, k), -b[k])], gap, np.inf)
    for m, (j, a, b2, t) in enumerate(meds):
        b = base[j]
        e = [(iy(j, a), b[a] / 2 / t), (iy(j, b2), b[b2] / 2 / t)]
        s, q = 4 * n + m, 4 * n + M + m
        row(e + [(s, -1.0)], -np.inf, np.exp(0.095))
        row(e + [(s, 1.0)], np.exp(-0.095), np.inf)
        row(e + [(q, -1.0)], -np.inf, np.exp(0.06))
        row(e + [(q, 1.0)], np.exp(-0.06), np.inf)

    b0, b1 = base
    for i in range(n):
        c0, c1 = R0[i], R1[i]
        scale = b1[c1]
        rl, rh = 4 * n + 2 * M + i, 5 * n + 2 * M + i
        row([(iy(1, c1), b1[c1] / scale), (iy(0, c0), -np.exp(hi_r[i, vi[i]]) * b0[c0] / scale), (rh, -1.0)], -np.inf, 0.0)
        row([(iy(1, c1), b1[c1] / scale), (iy(0, c0), -np.exp(lo_r[i, vi[i]]) * b0[c0] / scale), (rl, 1.0)], 0.0, np.inf)
    bounds = [(1e-3, None)] * (2 * n) + [(0, None)] * (nv - 2 * n)
    for k in range(n_fixed):
        bounds[iy(0, k)] = (1.0, 1.0)
    if not np.isnan(pins["pk.cmax_max"]):
        bounds[iy(0, n - 1)] = (pins["pk.cmax_max"] / b0[-1],) * 2
    if not np.isnan(pins["pk.cmax_median"]):
        lo_i, hi_i = (n - 1) // 2, n // 2
        row([(iy(0, lo_i), b0[lo_i] / 2 / pins["pk.cmax_median"]), (iy(0, hi_i), b0[hi_i] / 2 / pins["pk.cmax_median"])], 1.0, 1.0)
    cost = np.zeros(nv)
    cost[2 * n:4 * n] = 1.0
    cost[4 * n:4 * n + M] = 1e3
    cost[4 * n + M:4 * n + 2 * M] = 2.0
    cost[4 * n + 2 * M:] = 1e4
    A = np.array(A)
    lb, ub = np.array(lb), np.array(ub)
    res = optimize.linprog(cost, A_ub=np.r_[A[np.isfinite(ub)], -A[np.isfinite(lb)]],
                           b_ub=np.r_[ub[np.isfinite(ub)], -lb[np.isfinite(lb)]],
                           bounds=bounds, method="highs")
    if res.status != 0:
        return [b0.copy(), b1.copy()], np.inf
    y = res.x
    return [b0 * y[:n], b1 * y[n:2 * n]], (float(y[4 * n:4 * n + M].sum()), float(y[4 * n + 2 * M:].sum()))
