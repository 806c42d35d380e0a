"""The kinetics stage's objective (:mod:`calibration.fit_kinetics`): the Table 3 subgroups and
targets, and :class:`Table3Scorer`, which scores an assignment of Cmax/AUC ranks and Tlast days in
units of the paper's tolerances. :func:`avg_ranks` is a hand-written twin of scipy's ``rankdata``
plus the tie term, because the annealing ranks ~10^5 times (tests/test_fit_kinetics.py checks it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from cartlib.pk.summary import table3_rows

from .numerics import rowdot, settle

STATS = ("cmax", "auc28", "tlast")

# --- inputs -------------------------------------------------------------------------------

def table3_groups(analysis):
    """Level masks (K x n) with level ids, and row (grouping) masks of the True level."""
    dose_cut = float(pd.to_numeric(analysis["DOSE"], errors="coerce").median())
    levels, rows = [], []
    for row, _, split, lv in table3_rows(10, dose_cut, (1e-4, 1e-3, 1e-2)):
        member = split(analysis)
        masks = {}
        for level, _, value in lv:
            m = (member == value).to_numpy(bool)
            masks[value] = m
            levels.append((row, level, m))
        rows.append((row, masks[True], masks[False]))
    return levels, rows


def table3_targets(figures, levels, rows):
    fig = {f["key"]: f for f in figures}

    def val(key):
        f = fig.get(key)
        return float(f["value"]) if f is not None and f.get("feasible", True) else np.nan

    med = np.array([[val(f"pk.table3.{r}.{lv}.{s}_median") for s in STATS] for r, lv, _ in levels])
    p = np.array([[val(f"pk.table3.{r}.{s}_p") for s in STATS] for r, _, _ in rows])
    corr = {k: val(k) for k in ("pk.cmax_tlast_r", "pk.auc28_tlast_r", "bca.tlast_r")}
    pins = {k: val(k) for k in ("pk.cmax_median", "pk.cmax_max", "pk.tmax_min")}
    return med, p, corr, pins


# --- fast statistics ----------------------------------------------------------------------

def avg_ranks(x):
    """1-based average ranks (ties share their mean rank) and the tie term sum(t^3 - t)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    n = x.size
    first = np.empty(n, bool)
    first[0] = True
    np.not_equal(xs[1:], xs[:-1], out=first[1:])
    start = np.flatnonzero(first)
    cnt = np.diff(np.append(start, n))
    r = np.empty(n)
    r[order] = np.repeat(start + (cnt + 1) / 2.0, cnt)
    return r, float((cnt ** 3 - cnt).sum())


class Table3Scorer:
    """Objective over Cmax ranks, AUC ranks and realised Tlast days, in units of tolerance.

    Every figure costs ``W * max(0, miss - hinge)**2 + PULL * miss**2`` where ``miss`` is the
    distance to the paper in units of its tolerance (hinge a little inside 1), so figures
    inside their tolerance cost (almost) nothing. Cmax/AUC medians enter through *order
    feasibility*: a monotone map can put every subgroup median inside its window when no
    level whose median order statistics lie below another's has a window entirely above it
    (plus a small pull of the medians computed with the current values). The parts are
    cached per variable (Tlast, Cmax ranks, AUC ranks, cross terms) for the annealing. Each part
    is summed without BLAS and settled (:mod:`calibration.numerics`), so the annealing's
    decisions do not depend on the machine.
    """

    W, PULL = 10.0, 0.02

    def __init__(self, levels, rows, med_t, p_t, corr_t, bca, pin_median, lo_r, hi_r, vi0):
        self.L = np.array([m for _, _, m in levels])
        n = self.L.shape[1]
        self.n = n
        self.nk = self.L.sum(1)
        self.lo, self.hi = (self.nk - 1) // 2, self.nk // 2
        self.kidx = np.arange(len(self.L))
        self.G1 = np.array([a for _, a, _ in rows], float)
        self.n1 = self.G1.sum(1)
        self.n2 = np.array([b.sum() for _, _, b in rows], float)
        self.mu = self.n1 * self.n2 / 2
        self.p_ok = ~np.isnan(p_t)
        self.p_t = np.nan_to_num(p_t, nan=0.5)
        self.p_tol = np.where(self.p_t < 0.2, 0.05, 0.10)
        self.p_low = self.p_t < 0.05
        self.p_w = self.p_ok.astype(float)
        self.med_ok = ~np.isnan(med_t)
        self.med_t = np.nan_to_num(med_t, nan=1.0)
        self.med_w = self.med_ok[:, 2].astype(float)   # Tlast median weights
        self.corr_t = {k: v for k, v in corr_t.items() if not np.isnan(v)}
        br, _ = avg_ranks(bca)
        self.bca_c = br - br.mean()
        self.bca_ss = float(rowdot(self.bca_c, self.bca_c))
        self.norm = n * (n * n - 1) / 12.0
        self.pin = not np.isnan(pin_median)
        self.win = []
        for j in (0, 1):                        # order-feasibility windows (log, inside 0.10)
            t = np.log(self.med_t[:, j])
            w = np.where(self.med_ok[:, j], 0.095, 50.0)
            lo_, hi_ = t - w, t + w
            if j == 0 and self.pin:             # the overall Cmax median: exact
                lo_ = np.append(lo_, np.log(pin_median) - 1e-4)
                hi_ = np.append(hi_, np.log(pin_median) + 1e-4)
            self.win.append((lo_, hi_, np.maximum(0.0, lo_[:, None] - hi_[None, :]) / 0.1))
        self.lo_r, self.hi_r = lo_r, hi_r
        self.vi0 = np.sort(vi0)
        self.idx = np.arange(n)
        self.sd0 = np.sqrt(self.n1 * self.n2 / 12 * (n + 1))

    def _p(self, r, ties=0.0):
        u = rowdot(self.G1, r) - self.n1 * (self.n1 + 1) / 2
        n = self.n
        sd = self.sd0 if ties == 0 else np.sqrt(self.n1 * self.n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
        z = (np.abs(u - self.mu) - 0.5) / np.where(sd > 0, sd, 1.0)
        return np.minimum(2 * special.ndtr(-z), 1.0)

    def _pcost(self, p, j):
        e = np.abs(p - self.p_t[:, j]) / self.p_tol[:, j]
        side = (p < 0.05) != self.p_low[:, j]
        h = np.maximum(0, e - 0.8)
        c = self.W * (h + h * h) + self.PULL * e ** 2 + self.W * side * (1 + 10 * np.abs(p - 0.05))
        return float((c * self.p_w[:, j]).sum())

    def _corr(self, e):
        e = abs(e) / 0.05
        return 3 * self.W * max(0.0, e - 0.6) ** 2 + self.PULL * e * e

    def part_t(self, T, vi):
        """Tlast: p's, medians, BCA correlation, distance of the visit distribution to the model's."""
        rt, ties = avg_ranks(T)
        c = self._pcost(self._p(rt, ties), 2)
        s = np.sort(np.where(self.L, T[None, :], np.inf), axis=1)
        tmed = (s[self.kidx, self.lo] + s[self.kidx, self.hi]) / 2
        e = np.abs(tmed - self.med_t[:, 2]) / 3.0
        # outside the window: how many members must cross it (a landscape with slopes)
        below = (self.L & (T[None, :] < self.med_t[:, 2:3] - 3)).sum(1) - self.lo
        above = (self.L & (T[None, :] > self.med_t[:, 2:3] + 3)).sum(1) - (self.nk - 1 - self.hi)
        cross = np.maximum(0, below) + np.maximum(0, above) + (e > 1.0)
        c += float(((5 * self.W * (cross + np.maximum(0, e - 1.0)) ** 2 * (e > 1.0) + self.PULL * e ** 2) * self.med_w).sum())
        rtc = rt - rt.mean()
        ss = float(rowdot(rtc, rtc))
        if "bca.tlast_r" in self.corr_t:
            c += self._corr(float(rowdot(self.bca_c, rtc)) / np.sqrt(self.bca_ss * ss) - self.corr_t["bca.tlast_r"])
        c += 0.05 * float(np.abs(np.sort(vi) - self.vi0).sum())
        return settle(c), (rtc, np.sqrt(self.norm * ss))

    def part_r(self, j, R, v):
        """Cmax (j=0) or AUC (j=1) ranks: p's, order feasibility of the medians, value pull."""
        n = self.n
        c = self._pcost(self._p(R + 1.0), j)
        s = np.sort(np.where(self.L, R[None, :], n), axis=1)
        a, b = s[self.kidx, self.lo], s[self.kidx, self.hi]
        m = (v[j][a] + v[j][b]) / 2
        e = np.abs(np.log(m / self.med_t[:, j])) / 0.1
        c += 0.3 * float(((np.maximum(0, e - 0.7) ** 2 + self.PULL * e ** 2) * self.med_ok[:, j]).sum())
        if j == 0 and self.pin:
            a, b = np.append(a, (n - 1) // 2), np.append(b, n // 2)
        below = (a[:, None] <= a[None, :]) & (b[:, None] <= b[None, :])
        np.fill_diagonal(below, False)
        gap = self.win[j][2][below]
        return settle(c + self.W * 10 * float((gap * gap).sum()))

    def part_x(self, R0, R1, vi, v, tc):
        """Cross terms: Spearman of Cmax/AUC with Tlast, Cmax-AUC concordance, AUC/Cmax shape."""
        n = self.n
        rtc, den = tc
        c0, c1 = R0 - (n - 1) / 2, R1 - (n - 1) / 2
        c = 0.0
        if "pk.cmax_tlast_r" in self.corr_t:
            c += self._corr(float(rowdot(c0, rtc)) / den - self.corr_t["pk.cmax_tlast_r"])
        if "pk.auc28_tlast_r" in self.corr_t:
            c += self._corr(float(rowdot(c1, rtc)) / den - self.corr_t["pk.auc28_tlast_r"])
        c += self.W * (max(0.0, 0.85 - float(rowdot(c0, c1)) / self.norm) / 0.02) ** 2
        ratio = np.log(v[1][R1] / v[0][R0])
        lo_r, hi_r = self.lo_r[self.idx, vi], self.hi_r[self.idx, vi]
        sh = (np.maximum(0, lo_r - ratio) + np.maximum(0, ratio - hi_r)) / 0.15
        return settle(c + self.W * float(rowdot(sh, sh)))

    def parts(self, R0, R1, T, vi, v):
        t, tc = self.part_t(T, vi)
        return {"tlast": t, "cmax": self.part_r(0, R0, v), "auc": self.part_r(1, R1, v),
                "cross": self.part_x(R0, R1, vi, v, tc)}

    def __call__(self, R0, R1, T, vi, v):
        return sum(self.parts(R0, R1, T, vi, v).values())
