"""The outcome stage's objective (:mod:`calibration.fit_outcomes`): the paper.yaml figures it fits,
the OS/LFS arrays of a candidate assignment derived as :mod:`cartlib.derive` derives them from the
tables, and the scored :class:`OutcomeProblem`.

The statistics here are small exact twins of the suite's own, written by hand because the
annealing evaluates them ~10^4 times per run: :func:`cox_fit` (Efron ties, Newton-Raphson without
BLAS, :func:`calibration.numerics.newton`; agrees with :class:`cartlib.stats.cox.CoxModel` to
~1e-8), :func:`logrank_p` (R ``survdiff``) and :func:`km_at`. Their results are settled
(:func:`calibration.numerics.settle`), as is :meth:`OutcomeProblem.loss`, so the annealing's
decisions are the same on every machine. tests/test_fit_outcomes.py checks
each against the suite's function. The toxicity stage's survival guard scores with them too.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cartlib.derive import DAYS_PER_MONTH
from cartlib.scorecard import miss as scaled, within_tolerance
from cartlib.stats.cox import CoxModel

from .numerics import contract, inverse, newton, settle

OS_COVS = ("no_prior_cart", "neutropenia_g4", "crs_ge_3", "icans", "hsct_after", "bca_duration_days")
LFS_COVS = ("bca_duration_days", "female", "d28_mrd_neg")
STRATA = ("preld_mrd_lt_1e-4", "postld_mrd_lt_1e-4")
PRIORITY = {"efficacy.lfs": 3.0}   # weight of the misses of a family (Table 1A first)
PROTECT_WEIGHT = 3.0   # figures matched before the stage weigh this much more ...
PROTECT_PENALTY = 30.0  # ... and much more once they leave their tolerance
BCA_JITTER_DRAWS = 0   # extra jittered lab schedules under which they must hold too (robust; slower)
EMPTY_GROUP_PENALTY = 100.0   # per screen group without an OS death or an LFS event (see OutcomeProblem)
HELD = ("efficacy.os_5y", "efficacy.lfs_5y", "cohort.followup_median_mo", "cohort.followup_min_mo",
        "cohort.followup_max_mo")


def target_keys():
    """The paper.yaml keys this stage fits.

    >>> len(target_keys())
    43
    """
    keys = [f"efficacy.os.multi.{c}.{k}" for c in OS_COVS for k in ("hr", "hr_lo", "hr_hi", "p")]
    keys += [f"efficacy.lfs.multi.{c}.{k}" for c in LFS_COVS for k in ("hr", "hr_lo", "hr_hi", "p")]
    keys += [f"transplant.os_logrank_p.{s}" for s in STRATA]
    keys += [f"transplant.os_time_median_mo.{s}.{g}" for s in STRATA for g in ("hsct", "no_hsct")]
    keys.append("bca.duration_median_days")
    return keys


def miss(value, fig):
    """Signed miss of ``value`` from the paper.yaml figure ``fig`` in units of its tolerance
    (:func:`cartlib.scorecard.miss`, signed; |miss| <= 1 is a match, as
    :func:`cartlib.scorecard.within_tolerance` decides: a p-value on the wrong side of 0.05 counts
    more than 1); None/NaN counts 10.

    >>> f = {"value": 0.022, "tolerance": 0.05, "kind": "p"}
    >>> round(miss(0.03, f), 4), miss(0.06, f) > 1
    (0.16, True)
    """
    if value is None or not np.isfinite(value):
        return 10.0
    m = scaled(value, fig)
    if not np.isfinite(m):
        return 10.0
    m = math.copysign(m, value - float(fig["value"]))
    if not within_tolerance(value, fig) and abs(m) <= 1:      # a p-value on the other side of 0.05
        m = math.copysign(abs(m) + 1.0, m)
    return m



# -- fast statistics ------------------------------------------------------------------------------

def cox_fit(time, event, X, max_iter=30, start=None):
    """Efron-ties Cox fit by Newton-Raphson (:func:`calibration.numerics.newton` on standardised
    covariates with a vectorised Efron likelihood): (coef, se, coef per SD) or None if it does not converge / is
    monotone. Agrees with :class:`cartlib.stats.cox.CoxModel` to ~1e-8. ``start``: coefficients
    per SD of the covariates to start from (a previous fit's ``[2]``); the optimum does not depend on it.

    >>> t = np.array([2, 3, 4, 5, 6, 7, 8, 9, 10, 11.]); e = np.array([1, 1, 1, 1, 0, 1, 1, 1, 0, 1.])
    >>> b, se, _ = cox_fit(t, e, np.array([[1, 1, 1, 0, 1, 0, 1, 0, 0, 0.]]).T)
    >>> round(float(np.exp(b[0])), 4)
    4.1451
    """
    X = np.asarray(X, float)
    n, p = X.shape
    ev = np.flatnonzero(event == 1)
    if ev.size == 0:
        return None
    te = time[ev]
    R = (time[None, :] >= te[:, None]).astype(float)            # risk set of each event row
    D = ((time[None, :] == te[:, None]) & (event[None, :] == 1)).astype(float)  # its tie group
    dk = D.sum(1)
    # rank of each event row inside its tie group
    frac = np.zeros(ev.size)
    for j in range(ev.size):
        frac[j] = (te[:j] == te[j]).sum() / dk[j]
    sd = X.std(0)
    if np.any(sd == 0):
        return None
    Xs = (X - X.mean(0)) / sd
    beta = np.zeros(p) if start is None or len(start) != p else np.asarray(start, float).copy()

    XX = (Xs[:, :, None] * Xs[:, None, :]).reshape(n, p * p)
    RD = np.stack([R, D])                                           # risk sets and tie groups

    def terms(b):
        # sums over patients without BLAS (calibration.numerics): the same bits on every kernel
        eta = contract("np,p->n", Xs, b)
        m = eta.max()
        w = np.exp(eta - m)
        s0_ = contract("rjn,n->rj", RD, w)
        s1_ = contract("rjn,np->rjp", RD, w[:, None] * Xs)
        s2_ = contract("rjn,nq->rjq", RD, w[:, None] * XX)
        s0 = s0_[0] - frac * s0_[1]
        s1 = s1_[0] - frac[:, None] * s1_[1]
        s2 = (s2_[0] - frac[:, None] * s2_[1]).reshape(-1, p, p)
        ll = eta[ev].sum() - (np.log(s0) + m).sum()
        mean = s1 / s0[:, None]
        score = Xs[ev].sum(0) - mean.sum(0)
        info = (s2 / s0[:, None, None] - mean[:, :, None] * mean[:, None, :]).sum(0)
        return ll, score, info

    found = newton(terms, beta, max_iter=max_iter, accept_eps=1e-12, done_eps=1e-11, halvings=30, polish=1)
    if found is None:
        return None
    beta, _, info = found
    try:
        var = inverse(info)
    except np.linalg.LinAlgError:
        return None
    se = np.sqrt(np.maximum(np.diag(var), 0))
    if np.any(np.abs(beta) > 15) or np.any(se > 50):
        return None
    return settle(beta / sd), settle(se / sd), beta


def cox_keys(prefix, fit, j):
    """``prefix.hr/hr_lo/hr_hi/p`` of covariate ``j`` of a :func:`cox_fit` result (all None without a fit)."""
    if fit is None:
        return {f"{prefix}.{q}": None for q in ("hr", "hr_lo", "hr_hi", "p")}
    bj, sj = fit[0][j], fit[1][j]
    return {f"{prefix}.hr": settle(math.exp(bj)), f"{prefix}.hr_lo": settle(math.exp(bj - 1.959963984540054 * sj)),
            f"{prefix}.hr_hi": settle(math.exp(bj + 1.959963984540054 * sj)),
            f"{prefix}.p": settle(math.erfc(abs(bj / sj) / math.sqrt(2.0)))}


def logrank_p(time, event, group):
    """Two-group log-rank p (as R survdiff); NaN when undefined."""
    ev_t = np.unique(time[event == 1])
    if ev_t.size == 0 or group.all() or not group.any():
        return np.nan
    at = time[None, :] >= ev_t[:, None]
    dead = (time[None, :] == ev_t[:, None]) & (event[None, :] == 1)
    n, d = at.sum(1), dead.sum(1)
    n1, d1 = (at & group).sum(1), (dead & group).sum(1)
    e1 = d * n1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(n > 1, d * (n - d) / (n - 1) * (n1 / n) * (1 - n1 / n), 0.0)
    var = v.sum()
    if var <= 0:
        return np.nan
    chi = (d1.sum() - e1.sum()) ** 2 / var
    return settle(math.erfc(math.sqrt(chi / 2.0)))


def km_at(time, event, at):
    """Kaplan-Meier survival at ``at``."""
    s = 1.0
    for t in np.unique(time[(event == 1) & (time <= at)]):
        s *= 1 - ((time == t) & (event == 1)).sum() / (time >= t).sum()
    return s


# -- the state ------------------------------------------------------------------------------------

def survival_arrays(death_day, relapse_day, admin_day):
    """``(last, os_t, os_e, lfs_t, lfs_e)`` of latent day arrays, as :mod:`cartlib.derive` derives
    them from the tables: the last contact (death, else the follow-up) in days, OS and LFS times in
    months of whole days, events as 0/1 floats.

    >>> last, os_t, os_e, lfs_t, lfs_e = survival_arrays(np.array([np.nan, 400.0]), np.array([100.0, np.nan]),
    ...                                                  np.array([900.0, 900.0]))
    >>> last.tolist(), os_e.tolist(), lfs_e.tolist(), round(float(lfs_t[0]), 4)
    ([900.0, 400.0], [0.0, 1.0], [1.0, 1.0], 3.2854)
    """
    death = np.asarray(death_day, float)
    dead = ~np.isnan(death)
    last = np.where(dead, death, np.asarray(admin_day, float))
    first = np.fmin(np.nan_to_num(np.asarray(relapse_day, float), nan=np.inf), np.nan_to_num(death, nan=np.inf))
    lfs_e = np.isfinite(first).astype(float)
    lfs_t = np.floor(np.where(lfs_e == 1, first, last)) / DAYS_PER_MONTH
    return last, np.floor(last) / DAYS_PER_MONTH, dead.astype(float), lfs_t, lfs_e


class OutcomeProblem:
    """Fixed patient data, targets and the evaluation of one candidate assignment."""

    def __init__(self, s, figures, params):
        self.n = s["female"].size
        self.s = s
        o, b = params["outcomes"], params["bcell"]
        self.o = o
        self.sched = np.asarray(b["schedule_days"], float)
        # the lab visits after day 28 are jittered by +-3 days when the tables are built (draws the
        # stage cannot see): the figures matched before the stage must stay put under the nominal
        # schedule and under BCA_JITTER_DRAWS fixed jittered ones (a robust objective)
        jit = np.random.default_rng(0).uniform(-3, 3, (BCA_JITTER_DRAWS, self.n, self.sched.size))
        jittered = np.maximum.accumulate(self.sched + np.where(self.sched > 28, np.round(jit), 0.0), axis=2)
        self.scheds = [np.broadcast_to(self.sched, (self.n, self.sched.size)), *jittered]
        if "bcell_visit_days" in s:   # exact lab days, if the model draws them before the stages
            self.scheds = [np.asarray(s["bcell_visit_days"], float)]
        self._bca0, self._need = {}, {}
        self.covs = {
            "no_prior_cart": (~s["prior_cart"].astype(bool)).astype(float),
            "neutropenia_g4": (s["neutropenia_grade"] >= 4).astype(float),
            "crs_ge_3": (s["crs_grade"] >= 3).astype(float),
            "icans": s["icans"].astype(float),
            "hsct_after": (~np.isnan(s["hsct_day"])).astype(float),
            "female": s["female"].astype(float),
            "d28_mrd_neg": (s["cr"] & s["mrd_neg"]).astype(float),
        }
        self.hsct = ~np.isnan(s["hsct_day"])
        # both groups of every 0/1 covariate of the suite's univariable screen (parameters/default.yaml
        # cox_covariates) need an OS death and an LFS event, or the suite's univariable Cox fit has no
        # finite estimate (the toxicity stage may have moved prior HSCT to patients who stay well)
        screen = dict(self.covs, age_gt_10=np.asarray(s["age"]) > 10, genrisk_high=np.asarray(s["genrisk_high"], bool),
                      prior_hsct=np.asarray(s["prior_hsct"], bool), prior_cart=np.asarray(s["prior_cart"], bool),
                      preld_mrd_ge_1e_3=np.asarray(s["mrd_preld"]) >= 1e-3)
        self.screen_groups = [g for x in screen.values() for g in (np.asarray(x, bool), ~np.asarray(x, bool)) if g.any()]
        self.strata = {"preld_mrd_lt_1e-4": s["mrd_preld"] < 1e-4, "postld_mrd_lt_1e-4": s["mrd_postld"] < 1e-4}
        by_key = {f["key"]: f for f in figures}
        self.targets = [(k, by_key[k]["value"], by_key[k]) for k in target_keys()
                        if k in by_key and by_key[k].get("feasible", True)]
        self.protect, self.warm, self.cache = {}, {}, {}
        self.unreachable = self._unreachable_bounds(by_key, int((~np.isnan(s["death_day"])).sum()))
        self.targets = [t for t in self.targets if t[0] not in self.unreachable]
        self.held = {k: (by_key[k]["value"], float(by_key[k].get("tolerance", 0))) for k in HELD if k in by_key}

    def _unreachable_bounds(self, by_key, deaths):
        """CI bounds of binary OS covariates that no assignment of ``deaths`` deaths can give.

        The information of a 0/1 covariate is at most deaths/4, so its SE is at least
        2/sqrt(deaths); if even the paper's HR with that SE puts the bounds outside the
        tolerance, the bounds are dropped from the objective (the HR and p stay)."""
        out = set()
        if deaths < 1:
            return out
        se_min = 2.0 / math.sqrt(deaths)
        for c in OS_COVS:
            if c == "bca_duration_days":
                continue
            keys = [f"efficacy.os.multi.{c}.{b}" for b in ("hr", "hr_lo", "hr_hi")]
            if not all(k in by_key for k in keys):
                continue
            lo, hi = by_key[keys[1]]["value"], by_key[keys[2]]["value"]
            se_paper = (math.log(hi) - math.log(lo)) / 3.92
            tol = by_key[keys[1]].get("log_tolerance")
            if tol is not None and 1.959963984540054 * (se_min - se_paper) > float(tol):
                out.update(keys[1:])
        return out

    # derived quantities (as cartlib.derive derives them from the tables)
    def bca_duration(self, last_contact, scenario=0):
        """B-cell aplasia duration on the lab schedule of a jitter scenario (0: nominal days);
        cached for patients whose last contact comes after the visits that define it."""
        if scenario not in self._bca0:
            self._bca0[scenario], self._need[scenario] = self._bca_duration(
                np.full(self.n, np.inf), self.scheds[scenario], need=True)
        base, need = self._bca0[scenario], self._need[scenario]
        redo = last_contact < need
        if not redo.any():
            return base
        out = base.copy()
        out[redo] = self._bca_duration(last_contact, self.scheds[scenario], only=redo)[redo]
        return out

    def _bca_duration(self, last_contact, sched, need=False, only=None):
        s, days = self.s, sched
        onset, end = s["bca_onset_true"][:, None], s["bca_end_true"][:, None]
        aplastic = s["bca"][:, None] & (days >= onset) & (days < end)
        stop = np.fmin(last_contact, np.nan_to_num(s["hsct_day"], nan=np.inf) - 1)[:, None]
        taken = days <= stop
        out, last_needed = np.zeros(self.n), np.zeros(self.n)
        for i in np.flatnonzero(np.ones(self.n, bool) if only is None else only):
            d, a = sched[i][taken[i]], aplastic[i, taken[i]]
            first = np.flatnonzero((d > 0) & a)
            if first.size == 0:
                last_needed[i] = d[-1] if d.size else 0.0
                continue
            j = first[0]
            lost = np.flatnonzero(~a[j + 1:])
            last_needed[i] = d[j + 1 + lost[0]] if lost.size else d[-1]
            out[i] = last_needed[i] - d[j]
        return (out, last_needed) if need else out

    def covariates(self, st, bca):
        """The Cox covariates of a state: ICANS as the state's ``neuro`` permutation places it (if any)."""
        cov = dict(self.covs, bca_duration_days=bca)
        if st.get("neuro") is not None:
            cov["icans"] = self.covs["icans"][st["neuro"]]
        return cov

    def evaluate(self, st, bca=None):
        """Results of the targeted and held figures for a state (dict of arrays)."""
        last, os_t, os_e, lfs_t, lfs_e = survival_arrays(st["death_day"], st["relapse_day"], st["admin_day"])
        if bca is None:
            bca = self.bca_duration(last)
        cov = self.covariates(st, bca)
        neuro = st.get("neuro")
        out = {}
        for name, t, e, covs in (("os", os_t, os_e, OS_COVS), ("lfs", lfs_t, lfs_e, LFS_COVS)):
            key = (name, t.tobytes(), e.tobytes(), bca.tobytes(), None if neuro is None else neuro.tobytes())
            if key in self.cache:
                fit = self.cache[key]
            else:
                fit = cox_fit(t, e, np.column_stack([cov[c] for c in covs]), start=self.warm.get(name))
                if len(self.cache) > 20000:
                    self.cache.clear()
                self.cache[key] = fit
            if fit is not None:
                self.warm[name] = fit[2]
            for j, c in enumerate(covs):
                out.update(cox_keys(f"efficacy.{name}.multi.{c}", fit, j))
        for name, m in self.strata.items():
            h = m & self.hsct
            out[f"transplant.os_logrank_p.{name}"] = logrank_p(os_t[m], os_e[m], self.hsct[m])
            for g, mm in (("hsct", h), ("no_hsct", m & ~self.hsct)):
                key = f"transplant.os_time_median_mo.{name}.{g}"
                out[key] = float(np.median(os_t[mm])) if mm.any() else None
                out["_sorted." + key] = np.sort(os_t[mm])
        for k in range(1, len(self.scheds)):
            bk = self.bca_duration(last, k)
            key = ("lfs", k, lfs_t.tobytes(), lfs_e.tobytes(), bk.tobytes())
            if key not in self.cache:
                self.cache[key] = cox_fit(lfs_t, lfs_e, np.column_stack([bk if c == "bca_duration_days" else cov[c]
                                                                         for c in LFS_COVS]))
            fit = self.cache[key]
            for j, c in enumerate(LFS_COVS):
                out.update(cox_keys(f"_s{k}.efficacy.lfs.multi.{c}", fit, j))
        out["bca.duration_median_days"] = float(np.median(bca[bca > 0])) if (bca > 0).any() else None   # patients with an onset
        out["_empty_groups"] = sum(not e[g].any() for g in self.screen_groups for e in (os_e == 1, lfs_e == 1))
        out["efficacy.os_5y"] = km_at(os_t, os_e, 60.0)
        out["efficacy.lfs_5y"] = km_at(lfs_t, lfs_e, 60.0)
        out["cohort.followup_median_mo"] = float(np.median(os_t))
        out["cohort.followup_min_mo"] = float(os_t.min())
        out["cohort.followup_max_mo"] = float(os_t.max())
        return out

    def suite_fits(self, st):
        """Whether :class:`cartlib.stats.cox.CoxModel` (lifelines, as the suite runs it) fits the
        OS and LFS models of a state without a ``reason`` (lifelines can fail where Newton does not)."""
        last, os_t, os_e, lfs_t, lfs_e = survival_arrays(st["death_day"], st["relapse_day"], st["admin_day"])
        cov = self.covariates(st, self.bca_duration(last))
        for t, e, covs in ((os_t, os_e, OS_COVS), (lfs_t, lfs_e, LFS_COVS)):
            df = pd.DataFrame({"t": t, "e": e, **{c: cov[c] for c in covs}})
            if CoxModel().fit(df, "t", "e", list(covs)).reason is not None:
                return False
        return True

    def loss(self, res, held_ref):
        """Squared misses in tolerance units (linear beyond 2) + 4 per missed figure, plus
        EMPTY_GROUP_PENALTY per screen group without an OS death or an LFS event; inf if a held
        figure moved out of its tolerance or away from its starting value by more than that."""
        for k, (v, tol) in self.held.items():
            got = res.get(k)
            if got is None or abs(got - v) > tol + 1e-12 and abs(got - held_ref[k]) > 1e-9:
                return np.inf
        total, self.lost = EMPTY_GROUP_PENALTY * res.get("_empty_groups", 0), 0
        for k, v, rule in self.targets:
            m = miss(res.get(k), rule)
            x = res.get("_sorted." + k)
            if x is not None and x.size and abs(m) > 1:
                # a median moves only when the order statistics around it do: also count how far
                # the lower half lies above the target and the upper half below it
                h = (x.size + 1) // 2
                m = math.copysign(abs(m) + (np.maximum(x[:h] - v, 0).sum() + np.maximum(v - x[x.size - h:], 0).sum())
                                  / max(float(rule.get("tolerance", 0)), 1e-9) / 4.0, m)
            a = abs(m)
            w = PRIORITY.get(k.split(".multi.")[0], 1.0)
            if k in self.protect:
                # figures matched before the stage must stay matched (the stage sees the exact lab days)
                w = max(w, PROTECT_WEIGHT) + (PROTECT_PENALTY if a > 1 else 0.0)
                self.lost += a > 1
            total += w * ((a * a if a <= 2 else 4.0 + 4.0 * (a - 2)) + (4.0 if a > 1 else 0.0))
        return settle(total)

    def n_matched(self, res):
        return sum(abs(miss(res.get(k), rule)) <= 1 for k, v, rule in self.targets)
