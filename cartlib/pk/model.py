"""Per-patient cellular-kinetic model fits: the Stein 2019 expansion / biphasic-contraction shape.

:class:`KineticModelFitter` fits, to every patient of a pk table at once, the curve of
:mod:`cartlib.pk.model_core` (exponential expansion to Tmax, then fast contraction ``alpha`` of
the effector fraction and slow decline ``beta`` of the persisting fraction ``fb``) by maximum
likelihood on log concentrations, with a normal residual error on the log scale whose SD is
shared by all patients (the assay's), and BLQ samples as censored observations (Beal's M3:
each contributes the probability of being below the LLOQ). The method, its options and limits
are in docs/KINETIC_MODEL.md; the population summary is :mod:`cartlib.pk.model_population`.

>>> from cartlib.io import example_cohort
>>> from cartlib.synth import generate_cohort
>>> pk = generate_cohort(30, seed=4)["pk"]
>>> fit = KineticModelFitter().fit(pk, lloq=100)
>>> sorted(fit.summary["status"].unique())[:1]
['converged']
>>> round(fit.sigma_, 1)
0.3
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from . import model_core as core
from .model_quantities import quantities, quantity_jacobians
from .nca import nca
from .small_linalg import symmetric_eigen

BLQ_METHODS = ("m3", "zero", "half_lloq", "drop")
#: The fitted parameters, then the derived quantities, as columns of ``summary`` (each with ``_se``).
PARAMETERS = ("cmax", "tmax", "fold_expansion", "alpha", "fb", "beta")
DERIVED = ("doubling_time", "contraction_half_life", "persistence_half_life", "time_below_lloq", "auc28")
QUANTITIES = PARAMETERS + ("rho",) + DERIVED
#: Statuses whose identifiable quantities are reported (the others are NaN).
FITTED = ("converged", "partly identifiable")
_LOGIT_FB_ABSENT = -40.0                    # FB ~ 4e-18: no persisting fraction
_SIGMA_RANGE = (0.02, 5.0)


def profile_arrays(pk: pd.DataFrame, lloq: float, end_day=None):
    """Post-infusion samples as padded arrays: ids, days, log CONC (NaN where BLQ), blq, valid.

    Samples on or after a patient's ``end_day`` (a Series by USUBJID, e.g. the HSCT day,
    whose conditioning removes CAR-T cells) are left out; DAY <= 0 samples are pre-infusion.

    >>> pk = pd.DataFrame({"USUBJID": ["A", "A", "A", "B"], "DAY": [-2, 7, 14, 7],
    ...                    "CONC": [np.nan, 500.0, 50.0, 900.0]})
    >>> ids, t, y, blq, valid = profile_arrays(pk, 100.0)
    >>> ids.tolist(), t.tolist(), blq.tolist()
    (['A', 'B'], [[7.0, 14.0], [7.0, 0.0]], [[False, True], [False, False]])
    """
    conc = pd.to_numeric(pk["CONC"], errors="coerce").astype(float)
    df = pd.DataFrame({"USUBJID": pk["USUBJID"].astype(str).to_numpy(),
                       "DAY": pd.to_numeric(pk["DAY"]).astype(float).to_numpy(), "CONC": conc.to_numpy()})
    ids = pd.unique(df["USUBJID"])
    keep = df["DAY"] > 0
    if end_day is not None:
        end = pd.Series(end_day, dtype=float).reindex(df["USUBJID"]).to_numpy()
        keep &= ~(df["DAY"].to_numpy() >= end)
    df = df[keep.to_numpy()].sort_values(["USUBJID", "DAY"], kind="stable")
    row = pd.Index(ids).get_indexer(df["USUBJID"])
    col = df.groupby("USUBJID", sort=False).cumcount().to_numpy()
    width = int(col.max()) + 1 if len(col) else 1
    shape = (len(ids), width)
    t, y = np.zeros(shape), np.full(shape, np.nan)
    blq, valid = np.zeros(shape, bool), np.zeros(shape, bool)
    t[row, col] = df["DAY"].to_numpy()
    quant = (df["CONC"] >= lloq).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        y[row, col] = np.where(quant, np.log(df["CONC"].to_numpy()), np.nan)
    blq[row, col] = ~quant
    valid[row, col] = True
    return np.asarray(ids, dtype=object), t, y, blq, valid


def _multi_start(starts, data, sigma, lo, hi, max_iter):
    """:func:`cartlib.pk.model_core.levenberg_marquardt` from each of ``starts`` as one batch of stacked rows
    (each row iterates on its own, so each start gets the fits a separate call gives): (theta, nll, conv) each."""
    k, n = len(starts), len(starts[0])
    stacked = tuple(np.concatenate([a] * k) for a in data[:4]) + (data[4],)
    th, f, c = core.levenberg_marquardt(np.concatenate(starts), stacked, sigma, lo, hi, max_iter)
    return [(th[i * n:(i + 1) * n], f[i * n:(i + 1) * n], c[i * n:(i + 1) * n]) for i in range(k)]


_THETA_LABELS = ("Cmax", "Tmax", "expansion rate", "contraction rate alpha", "persisting fraction FB",
                 "persistence rate beta")


class KineticModelFitter:
    """Fits the expansion / biphasic-contraction model to each patient (lifelines vocabulary).

    ``fit(pk, lloq=100, end_day=None)`` returns self. ``blq`` chooses how BLQ samples enter the
    likelihood: ``"m3"`` censored (default), ``"zero"`` BLQ set to 0 (on the log scale, the
    level 1 copy/µg: log 1 = 0), ``"half_lloq"`` set to LLOQ/2, ``"drop"`` left out. ``sigma``
    is the residual SD of log concentrations: None estimates one value shared by all patients
    (maximum likelihood, corrected for the parameters fitted); a number fixes it. A quantity
    whose 95 % CI spans more than ``max_ci_fold`` (default 100-fold) is reported as not
    identifiable (NaN), as is one that changes along a flat direction of the likelihood.

    Attributes after ``fit``: ``summary`` (one row per patient: every quantity of
    :data:`QUANTITIES` with its ``_se`` from the observed information by the delta method,
    ``status`` "converged", "partly identifiable" (the quantities the data cannot determine are
    NaN, named in ``reason``), "not identifiable" or "not converged", ``reason``, ``n_samples``,
    ``n_blq``, ``loglik``), ``sigma_``, ``theta_`` and ``covariance_`` (the unconstrained
    coordinates of :mod:`cartlib.pk.model_core` and their covariance).

    >>> from cartlib.synth import generate_cohort
    >>> fit = KineticModelFitter().fit(generate_cohort(10, seed=2)["pk"], lloq=100)
    >>> list(fit.summary.columns[:4])
    ['cmax', 'cmax_se', 'tmax', 'tmax_se']
    >>> fit.predict([0.0, 10.0]).shape
    (10, 2)
    """

    def __init__(self, blq: str = "m3", sigma: float | None = None, tmax_max: float = 60.0,
                 auc_end_day: float = 28.0, max_iter: int = 300, max_ci_fold: float = 100.0):
        if blq not in BLQ_METHODS:
            raise ValueError(f"blq must be one of {BLQ_METHODS}, not {blq!r}")
        if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive number or None, not {sigma!r}")
        if not (np.isfinite(tmax_max) and tmax_max > 0.5):
            raise ValueError(f"tmax_max must be a number of days > 0.5, not {tmax_max!r}")
        self.blq, self.sigma, self.tmax_max = blq, sigma, float(tmax_max)
        if not (np.isfinite(max_ci_fold) and max_ci_fold > 1):
            raise ValueError(f"max_ci_fold must be a number > 1, not {max_ci_fold!r}")
        self.auc_end_day, self.max_iter, self.max_ci_fold = float(auc_end_day), int(max_iter), float(max_ci_fold)
        # a quantity whose 95 % CI (estimate x/÷ exp(1.96 SE_log)) spans more than max_ci_fold is
        # reported as not identifiable: the data bound it only loosely
        self._max_log_se = np.log(self.max_ci_fold) / (2 * 1.959964)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, pk: pd.DataFrame, lloq: float = 100.0, end_day=None) -> "KineticModelFitter":
        """Fit every patient of ``pk`` (USUBJID, DAY, CONC with NaN for BLQ); returns self."""
        for column in ("USUBJID", "DAY", "CONC"):
            if column not in pk.columns:
                raise ValueError(f"pk table has no column {column}")
        if not (np.isfinite(lloq) and lloq > 0):
            raise ValueError(f"lloq must be a positive number, not {lloq!r}")
        self.lloq = float(lloq)
        ids, t, y, blq, valid = profile_arrays(pk, self.lloq, end_day)
        self.ids_, self.days_, self.log_conc_, self.blq_, self.valid_ = ids, t, y, blq, valid
        y_fit, censored, valid_fit = self._blq_rule(y, blq, valid)
        self.data_ = (t, y_fit, censored, valid_fit, np.log(self.lloq))
        starts, reasons = self._starts(pk, end_day, t, blq, valid_fit)
        fittable = np.array([r is None for r in reasons])
        theta, converged, loglik = self._estimate(starts, fittable)
        self.theta_, self.loglik_ = theta, loglik
        self.covariance_, status, reasons = self._information(theta, converged, fittable, reasons)
        self.summary = self._summary(theta, status, reasons)
        return self

    def _blq_rule(self, y, blq, valid):
        censored = blq & valid
        if self.blq == "m3":
            return y, censored, valid
        if self.blq == "drop":
            return y, np.zeros_like(censored), valid & ~blq
        level = 0.0 if self.blq == "zero" else np.log(self.lloq / 2)
        return np.where(censored, level, y), np.zeros_like(censored), valid

    def _starts(self, pk, end_day, t, blq, valid):
        """Starting values from NCA (Cmax, Tmax, Clast, Tlast) and why a patient cannot be fitted."""
        post = pk[pd.to_numeric(pk["DAY"]) > 0]
        if end_day is not None:
            end = pd.Series(end_day, dtype=float).reindex(post["USUBJID"].astype(str)).to_numpy()
            post = post[~(pd.to_numeric(post["DAY"]).to_numpy() >= end)]
        n = len(self.ids_)
        table = nca(post, lloq=self.lloq).reindex(self.ids_) if len(post) else pd.DataFrame(
            np.nan, index=self.ids_, columns=["cmax", "tmax", "clast", "tlast"])
        cmax, tmax = table["cmax"].to_numpy(float), table["tmax"].to_numpy(float)
        clast, tlast = table["clast"].to_numpy(float), table["tlast"].to_numpy(float)
        reasons: list[str | None] = [None] * n
        n_valid = valid.sum(axis=1)
        before = (valid & (t < tmax[:, None])).sum(axis=1)
        after = (valid & (t > tmax[:, None])).sum(axis=1)
        for i in range(n):
            if not np.isfinite(cmax[i]):
                reasons[i] = "no quantifiable sample after infusion"
            elif n_valid[i] < core.N_THETA:
                reasons[i] = f"fewer samples ({n_valid[i]}) than model parameters ({core.N_THETA})"
            elif before[i] == 0:
                reasons[i] = "no sample before the peak: the expansion rate is not identifiable"
            elif after[i] == 0:
                reasons[i] = "no post-peak samples"
            elif after[i] < 3:
                reasons[i] = f"{after[i]} post-peak samples: the two decline phases need at least 3"
        cmax, tmax = np.nan_to_num(cmax, nan=1e4), np.clip(np.nan_to_num(tmax, nan=10.0), 1.0, self.tmax_max)
        span = np.where(np.isfinite(tlast) & (tlast > tmax), tlast - tmax, np.nan)
        mean_slope = np.clip(np.nan_to_num(np.log(cmax / np.nan_to_num(clast, nan=1.0)) / span, nan=0.05), 1e-3, 1.0)
        grid = []
        for fold in (30.0, 3000.0):
            for fb in (0.003, 0.05):
                alpha = np.maximum(0.2, 2 * mean_slope)
                beta = np.clip(mean_slope / 5, 2e-4, 0.5 * alpha)
                grid.append(core.to_theta(cmax, tmax, np.log(fold) / tmax, alpha, np.full(n, fb), beta))
        return grid, reasons

    def _estimate(self, starts, fittable):
        """Multi-start fits, then (unless sigma is fixed) alternate: shared sigma, refits."""
        lo, hi = core.box(self.tmax_max)
        idx = np.flatnonzero(fittable)
        n = len(fittable)
        theta = np.full((n, core.N_THETA), np.nan)
        converged, loglik = np.zeros(n, bool), np.full(n, np.nan)
        sigma = self.sigma if self.sigma is not None else 0.5
        if idx.size == 0:
            self.sigma_ = float(sigma)
            self.one_phase_ = np.zeros(n, bool)
            return theta, converged, loglik
        data = tuple(a[idx] for a in self.data_[:4]) + (self.data_[4],)
        best_th, best_f, best_c = None, None, None
        for th, f, c in _multi_start([start[idx] for start in starts], data, sigma, lo, hi, self.max_iter):
            if best_th is None:
                best_th, best_f, best_c = th, f, c
            else:
                better = f < best_f - 1e-9
                best_th[better], best_f[better], best_c[better] = th[better], f[better], c[better]
        for _ in range(8 if self.sigma is None else 0):
            new_sigma = self._shared_sigma(best_th, data)
            if abs(np.log(new_sigma / sigma)) < 0.005:
                sigma = new_sigma
                break
            sigma = new_sigma
            best_th, best_f, best_c = core.levenberg_marquardt(best_th, data, sigma, lo, hi, self.max_iter)
        best_f = core.neg_loglik(best_th, data, sigma)
        single, best_th, best_f, best_c = self._one_phase_if_too_fast(best_th, best_f, best_c, data, sigma, lo, hi)
        self.sigma_ = float(sigma)
        theta[idx], converged[idx], loglik[idx] = best_th, best_c, -best_f
        self.one_phase_ = np.zeros(n, bool)
        self.one_phase_[idx] = single
        return theta, converged, loglik

    def _one_phase_if_too_fast(self, theta, f, conv, data, sigma, lo, hi):
        """Where the two-phase fit puts alpha at its upper bound (a contraction half-life under
        0.7 days), refit with a single decline phase (FB fixed at ~0, beta at its lower bound)
        and keep that fit: its FB and beta are not identifiable. Without this, noise near the
        peak is fitted by a spurious, very fast extra phase and the true contraction is
        reported as the persistence phase."""
        lo_1, hi_1 = lo.copy(), hi.copy()
        lo_1[4] = hi_1[4] = _LOGIT_FB_ABSENT
        hi_1[5] = lo[5]
        # only the patients it can replace are refitted (each row's fit is its own)
        rows, single = np.flatnonzero(theta[:, 3] >= hi[3] - 1e-4 * (hi[3] - lo[3])), np.zeros(len(theta), bool)
        theta, f, conv = theta.copy(), f.copy(), conv.copy()
        if rows.size == 0:
            return single, theta, f, conv
        p = core.natural(theta[rows])
        best, starts = None, [theta[rows].copy() for _ in range(2)]
        for start, rate in zip(starts, (p["alpha"], p["beta"])):
            start[:, 3], start[:, 4], start[:, 5] = np.log(np.maximum(rate - np.exp(lo[5]), 1e-3)), lo_1[4], lo[5]
        sub = tuple(a[rows] for a in data[:4]) + (data[4],)
        for th, f1, c1 in _multi_start(starts, sub, sigma, lo_1, hi_1, self.max_iter):
            if best is None:
                best = [th, f1, c1]
            else:
                better = f1 < best[1]
                for k, v in enumerate((th, f1, c1)):
                    best[k][better] = v[better]
        ok = np.isfinite(best[1])
        single[rows[ok]] = True
        theta[rows[ok]], f[rows[ok]], conv[rows[ok]] = (b[ok] for b in best)
        return single, theta, f, conv

    def _shared_sigma(self, theta, data):
        """Residual SD maximising the likelihood given the curves, inflated by N / (N - p) on
        the variance scale for the parameters fitted (as a residual mean square is)."""
        t, y, censored, valid, log_lloq = data
        mu = core.log_curve(theta, t)

        def objective(log_sigma):
            return core.neg_loglik_terms(mu, y, censored, valid, np.exp(log_sigma), log_lloq).sum()

        res = minimize_scalar(objective, bounds=np.log(_SIGMA_RANGE), method="bounded",
                              options={"xatol": 1e-5})
        n_obs, n_par = valid.sum(), core.N_THETA * theta.shape[0]
        inflation = np.sqrt(n_obs / (n_obs - n_par)) if n_obs > 2 * n_par else np.sqrt(2.0)
        return float(np.clip(np.exp(res.x) * inflation, *_SIGMA_RANGE))

    def _information(self, theta, converged, fittable, reasons):
        """Covariance of theta (inverse observed information on the identifiable directions),
        each patient's status and reason, and which quantities the data cannot determine.

        A coordinate at the bound of its range, and any direction in which the likelihood is
        flat (information eigenvalue below 1e-7 of the largest), are not identifiable; a
        quantity that changes along one of them (by more than 1 % of its value per unit step)
        is reported as NaN, the others with their SE from the pseudo-inverse information.
        """
        n = len(fittable)
        cov = np.full((n, core.N_THETA, core.N_THETA), np.nan)
        status = np.array(["not identifiable"] * n, dtype=object)
        reasons = list(reasons)
        self.unidentified_ = [set(QUANTITIES) for _ in range(n)]
        idx = np.flatnonzero(fittable)
        if idx.size == 0:
            return cov, status, reasons
        data = tuple(a[idx] for a in self.data_[:4]) + (self.data_[4],)
        H = core.hessian(theta[idx], data, self.sigma_)
        jac = quantity_jacobians(theta[idx], self.lloq, self.auc_end_day)
        values = quantities(theta[idx], self.lloq, self.auc_end_day)
        lo, hi = core.box(self.tmax_max)
        margin = 1e-4 * (hi - lo)
        for j, i in enumerate(idx):
            at_bound = (theta[i] <= lo + margin) | (theta[i] >= hi - margin)
            free = np.flatnonzero(~at_bound)
            if not np.all(np.isfinite(H[j])):
                reasons[i] = "the information matrix could not be computed"
                continue
            eig, vectors = symmetric_eigen(H[j][np.ix_(free, free)])
            if not np.all(np.isfinite(eig)):
                reasons[i] = "the information matrix could not be computed"
                continue
            keep = eig > 1e-7 * max(eig.max(initial=0.0), 1e-300)
            full = np.zeros((core.N_THETA, free.size))
            full[free] = vectors
            null = np.column_stack([np.eye(core.N_THETA)[:, at_bound], full[:, ~keep]])
            inner = full[:, keep]
            cov[i] = np.einsum("ik,jk->ij", inner / eig[keep], inner)   # einsum, not @: no BLAS
            bad = {q for q, J in jac.items()
                   if np.any(np.abs(np.einsum("i,ik->k", J[j], null)) > 1e-2 * max(abs(values[q][j]), 1e-300))}
            se = {q: np.sqrt(max(np.einsum("i,ij,j->", J[j], cov[i], J[j]), 0.0)) for q, J in jac.items()}
            loose = {q for q in jac if q not in bad and se[q] > self._max_log_se * abs(values[q][j])}
            bad |= loose
            self.unidentified_[i] = bad
            if not converged[i]:
                status[i], reasons[i] = "not converged", f"no convergence in {self.max_iter} iterations"
            elif not bad:
                status[i], reasons[i] = "converged", None
            else:
                if self.one_phase_[i]:
                    at_bound[4:] = False
                causes = [f"{_THETA_LABELS[k]} at the bound of its range" for k in np.flatnonzero(at_bound)]
                if self.one_phase_[i]:
                    causes.insert(0, "a single decline phase fits as well")
                if (~keep).any():
                    causes.append("flat likelihood")
                if loose:
                    causes.append(f"95 % CI of {', '.join(q for q in QUANTITIES if q in loose)} wider than "
                                  f"{self.max_ci_fold:g}-fold")
                shown = [q for q in PARAMETERS if q in bad]
                status[i] = "partly identifiable" if len(shown) < len(PARAMETERS) else "not identifiable"
                reasons[i] = f"not identifiable: {', '.join(shown or sorted(bad))} ({'; '.join(causes)})"
        return cov, status, reasons

    def _summary(self, theta, status, reasons):
        q = quantities(theta, self.lloq, self.auc_end_day)
        jac = quantity_jacobians(theta, self.lloq, self.auc_end_day)
        out = pd.DataFrame(index=pd.Index(self.ids_, name="USUBJID"))
        for name in QUANTITIES:
            hidden = np.array([name in bad for bad in self.unidentified_])
            se = np.sqrt(np.maximum(np.einsum("ni,nij,nj->n", jac[name], self.covariance_, jac[name]), 0.0))
            out[name] = np.where(hidden, np.nan, q[name])
            out[f"{name}_se"] = np.where(hidden, np.nan, se)
        out["status"], out["reason"] = status, reasons
        out["n_samples"] = self.valid_.sum(axis=1)
        out["n_blq"] = (self.blq_ & self.valid_).sum(axis=1)
        out["loglik"] = self.loglik_
        out.attrs.update(sigma=self.sigma_, lloq=self.lloq, blq=self.blq)
        return out

    # -- using the fits --------------------------------------------------------------------
    def predict(self, days, patients=None) -> pd.DataFrame:
        """Fitted concentrations (copies/µg): one row per patient, one column per day
        (NaN for a patient without a fit)."""
        days = np.asarray(days, float).ravel()
        rows = np.arange(len(self.ids_)) if patients is None else pd.Index(self.ids_).get_indexer(list(patients))
        if np.any(rows < 0):
            raise ValueError("predict: unknown patients " + str([p for p, r in zip(patients, rows) if r < 0][:5]))
        theta = self.theta_[rows]
        values = np.exp(core.log_curve(np.nan_to_num(theta), np.broadcast_to(days, (len(rows), days.size))))
        values[~np.isfinite(theta[:, 0])] = np.nan
        return pd.DataFrame(values, index=pd.Index(self.ids_[rows], name="USUBJID"), columns=days)

    def residuals(self) -> pd.DataFrame:
        """Every fitted sample: USUBJID, DAY, observed and predicted log concentration, ``blq``
        and the standardised residual (observed - predicted) / sigma (NaN for BLQ samples)."""
        mu = core.log_curve(np.nan_to_num(self.theta_), self.days_)
        rows, cols = np.nonzero(self.valid_ & np.isfinite(self.theta_[:, :1]))
        obs, pred = self.log_conc_[rows, cols], mu[rows, cols]
        return pd.DataFrame({"USUBJID": self.ids_[rows], "DAY": self.days_[rows, cols], "log_observed": obs,
                             "log_predicted": pred, "blq": self.blq_[rows, cols],
                             "std_residual": (obs - pred) / self.sigma_})

    def analysis_columns(self) -> pd.DataFrame:
        """Per-patient model quantities to join to the analysis table: ``model_<quantity>`` and
        ``model_status`` (NaN where the fit does not determine the quantity), indexed by USUBJID."""
        ok = self.summary["status"].isin(FITTED)
        out = self.summary[list(QUANTITIES)].where(ok, np.nan).add_prefix("model_")
        out["model_status"] = self.summary["status"]
        return out

    def plot_fits(self, patients=None, ncols: int = 6, axes=None):
        """Small multiples: each patient's samples (BLQ marked), fitted curve and LLOQ."""
        from .model_plots import plot_fits
        return plot_fits(self, patients=patients, ncols=ncols, axes=axes)

    def plot_gof(self, axes=None):
        """Goodness of fit: observed vs predicted, standardised residuals vs time."""
        from .model_plots import plot_gof
        return plot_gof(self, axes=axes)
