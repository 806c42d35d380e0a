"""Calibration stage: the multivariable logistic models of severe CRS (paper Table 2).

Table 2 model 1 adjusts for pre-LD MRD, model 2 for post-LD MRD; in the paper the female and
no-prior-HSCT ORs differ a lot between them (0.364 vs 0.185; 0.391 vs 0.135) while both MRD
ORs are 0.067. With the cohort's covariates fixed the two models come out nearly the same,
so this stage searches over four kinds of swap between two patients (all permutations:
every count and marginal distribution is kept exactly):

* **toxicity bundles** (:data:`TOXICITY_KEYS`: CRS grade and onset, ICANS, ANC nadir and
  neutropenia, infections, HLH, GVHD, drugs, IL-6) move whole, so every toxicity count and
  every association inside a bundle is unchanged. The HLH patient keeps its bundle (its
  pre-LD MRD was set by :func:`calibration.nudges.nudge`), and so does a GVHD bundle.
* **post-LD MRD** (``mrd_postld`` with its latent ``log10_mrd_postld``) moves between
  patients only when the new pairing with the patient's (fixed) pre-LD MRD is a plausible
  lymphodepletion shift of the model, |z| <= ``z_max`` of ``post_shift_mean/sd_log10`` or no
  worse than the patient's own (:func:`post_ld_pairing_ok`), and only within the same side
  of 1e-4, so the transplant strata of Figure 1 (pre/post-LD MRD < 1e-4) keep their members.
  Pre-LD MRD, which drives CAR-T expansion, CRS, ICANS, HLH and relapse in the model, is not
  moved; post-LD MRD drives nothing downstream in the model, so only its pairing with
  pre-LD MRD (r of log10 values 0.88 -> 0.83 on the default cohort) and with toxicity
  changes. The resulting post-LD MRD / severe-CRS association is the one the paper reports.
* **sex** (optional, ``permute_sex``, off by default): a swap is taken only if
  :func:`survival_guard` accepts the state: the exact Efron Cox fits of Table 1A (LFS: female,
  B-cell aplasia duration, day-28 MRD-negative CR; OS finite) on times, events and B-cell
  aplasia durations derived exactly as the suite derives them (equal to the suite's CoxModel),
  with every LFS figure within tolerance kept within ``lfs_margin`` of its tolerance (or no
  further than at the start). Sex drives relapse in the model, so this re-labels an
  outcome-relevant covariate. On the default cohort it reaches 27-30 of the 31 figures, but
  the outcome stage that follows (annealing) then lands on other OS Cox figures (some matched
  ones are lost), which is why it is off.

* **treatment histories** (optional, ``permute_history``; on in the recorded settings):
  :data:`HISTORY_KEYS` (indication, prior HSCT, months from diagnosis) move whole, so a prior
  HSCT still only follows an MRD re-emergence and still lengthens the time from diagnosis, as
  in the model; nothing downstream in the model depends on them (GVHD, which does, has no
  case). A swap is taken only if both the prior-HSCT patients and the others keep a death, so
  the suite's univariable prior-HSCT Cox fits have an estimate. With the histories fixed, no
  placement of severe CRS reaches Table 2 (``scripts/table2_enumerate.py``).

Dose is not moved (it sets c0 and expansion).

Search: a best-improvement descent over all allowed swaps (each candidate scored by both
models fitted at once on grouped data, vectorised Newton-Raphson, once per distinct table),
``iterations`` steps, with ``kicks`` seeded random swaps at local optima; the best state is
kept. The loss is in units of the tolerances of paper.yaml (``log_tolerance`` of ORs and CI
bounds, else SE_paper / 2 from the paper's CI; p within its tolerance and on the paper's
side of 0.05); an OR on the wrong side of 1 is penalised; a figure within tolerance before
the stage must stay so (``keep_matched``); ``move_weight`` per moved item (for bundles also
per changed toxicity flag and per log10 true-Cmax distance) prefers few, similar moves.
Targets come from ``parameters/paper.yaml`` only.
"""
from __future__ import annotations

import math

import numpy as np

from cartlib.scorecard import within_tolerance
from cartlib.synth.model import load_parameters

from .figures import paper_figures
from .outcome_objective import LFS_COVS, OS_COVS, OutcomeProblem, cox_fit, cox_keys, survival_arrays
from .table2_objective import SEVERE_GRADE, covariate, table2_loss, table2_targets

#: every key :func:`cartlib.synth.model.toxicity` returns (one bundle per patient)
TOXICITY_KEYS = ("crs_grade", "crs_onset", "icans", "icans_grade", "anc_nadir", "neutropenia_grade",
                 "infection", "infection_detail", "infection_grade", "infection_onset", "hlh", "gvhd",
                 "tocilizumab", "corticosteroid", "il6_elevated", "il6_peak", "il6_peak_day")
#: a patient's treatment history, moved whole by the history swaps (prior HSCT is only possible
#: after an MRD re-emergence, and it lengthens the time from diagnosis)
HISTORY_KEYS = ("indication", "prior_hsct", "dx_to_inf_mo")


def post_ld_pairing_ok(s, z_max=1.96):
    """``ok[i, k]``: patient i may carry patient k's post-LD MRD (value and latent).

    Lymphodepletion shifts log10 MRD by ``post_shift_mean_log10`` +- ``post_shift_sd_log10``
    (``parameters/synthetic.yaml``); a pairing is allowed when its standardised shift
    (latent log10 post-LD minus log10 pre-LD, floored at -5 as the model's latent) is within
    ``z_max``, or no larger than the patient's own, and when it keeps the patient on the
    same side of post-LD MRD 1e-4 (the transplant strata of Figure 1 are kept).

    >>> s = {"mrd_preld": np.array([0.0, 1e-3, 2e-3]), "log10_mrd_preld": np.array([-5.0, -3.0, -2.7]),
    ...      "mrd_postld": np.array([0.0, 5e-4, 2e-3]), "log10_mrd_postld": np.array([-5.0, -3.3, -2.7])}
    >>> post_ld_pairing_ok(s).astype(int).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    """
    m = load_parameters()["mrd"]
    pre = np.asarray(s["mrd_preld"], float)
    lpre = np.where(pre > 0, np.log10(np.where(pre > 0, pre, 1.0)), np.asarray(s["log10_mrd_preld"], float))
    lpre = np.maximum(lpre, -5.0)
    lpost = np.asarray(s["log10_mrd_postld"], float)
    z = (lpost[None, :] - lpre[:, None] - m["post_shift_mean_log10"]) / m["post_shift_sd_log10"]
    own = np.abs(np.diagonal(z))
    low = np.asarray(s["mrd_postld"], float) < 1e-4
    return (np.abs(z) <= np.maximum(z_max, own)[:, None] + 1e-12) & (low[:, None] == low[None, :])


def sex_swap_ok(s, window=1):
    """``ok[i, j]``: patients i and j may exchange sex without disturbing the LFS picture: the
    same LFS status (relapse or death by the end of follow-up, or not) and at most ``window``
    LFS events between their LFS times (so the Cox risk sets of sex barely change). None if
    the outcome keys are missing.

    >>> s = {"relapse_day": np.array([10.0, np.nan, 30.0, np.nan, 50.0]),
    ...      "death_day": np.full(5, np.nan), "admin_day": np.array([99.0, 99, 99, 60, 99])}
    >>> sex_swap_ok(s, window=0).astype(int).tolist()
    [[1, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1]]
    >>> sex_swap_ok(s, window=1)[[0, 1], [2, 4]].tolist()
    [True, False]
    """
    if not all(k in s for k in ("relapse_day", "death_day", "admin_day")):
        return None
    admin = np.asarray(s["admin_day"], float)
    first = np.fmin(np.nan_to_num(np.asarray(s["relapse_day"], float), nan=np.inf),
                    np.nan_to_num(np.asarray(s["death_day"], float), nan=np.inf))
    event = first <= admin
    time = np.where(event, first, admin)
    before = (time[event][None, :] < time[:, None]).sum(axis=1)     # LFS events before each time
    return (event[:, None] == event[None, :]) & (np.abs(before[:, None] - before[None, :]) <= window)


def survival_guard(s, figures, params=None, margin=0.5):
    """Exact check of the Cox models of Table 1A that the swaps touch: ``ok(bundles, sex)``.

    Sex is a covariate of the LFS model (Table 1A: female, B-cell aplasia duration, day-28
    MRD-negative CR) and the toxicity bundles carry three covariates of the OS model (grade
    >= 4 neutropenia, severe CRS, ICANS). For permutations ``bundles`` (of the toxicity
    bundles) and ``sex`` (of the female flags), ``ok`` is True when the OS and LFS Efron Cox
    fits exist (finite MLE) and every LFS figure of ``figures`` within its paper.yaml tolerance
    on ``s`` stays within ``margin`` times it or no further from the paper than on ``s`` (so the
    outcome stage that follows keeps room to move), none outside gets further away (log scale
    for HRs and CI bounds; a p-value also stays on the paper's side of 0.05).
    Times, events and B-cell aplasia durations are derived exactly as :mod:`cartlib.derive`
    derives them from the tables (lab days ``s["bcell_visit_days"]``; the helpers of
    :mod:`calibration.fit_outcomes`). None when a key is missing or the start has no fit.
    """
    need = ("relapse_day", "death_day", "admin_day", "hsct_day", "cr", "mrd_neg", "prior_cart", "bca",
            "bca_onset_true", "bca_end_true", "female", "neutropenia_grade", "crs_grade", "icans")
    if not all(k in s for k in need):
        return None
    by_key = {f["key"]: f for f in figures}
    prob = OutcomeProblem(s, figures, params or load_parameters())
    last, os_t, os_e, lfs_t, lfs_e = survival_arrays(s["death_day"], s["relapse_day"], s["admin_day"])
    cov = dict(prob.covs, bca_duration_days=prob.bca_duration(last))
    lfs_keys = [k for k in (f"efficacy.lfs.multi.{c}.{q}" for c in LFS_COVS for q in ("hr", "hr_lo", "hr_hi", "p"))
                if k in by_key and by_key[k].get("feasible", True) is not False]

    def lfs_figures(female):
        X = np.column_stack([female if c == "female" else cov[c] for c in LFS_COVS])
        fit = cox_fit(lfs_t, lfs_e, X)
        if fit is None:
            return None
        out = {}
        for j, c in enumerate(LFS_COVS):
            out.update(cox_keys(f"efficacy.lfs.multi.{c}", fit, j))
        return out

    def distance(k, v):
        f = by_key[k]
        return abs(math.log(v / f["value"])) if f.get("log_tolerance") is not None else abs(v - f["value"])

    def tolerance(k):
        f = by_key[k]
        return float(f["log_tolerance"] if f.get("log_tolerance") is not None else f.get("tolerance", 0.0))

    female0 = np.asarray(s["female"], float)
    start = lfs_figures(female0)
    if start is None or cox_fit(os_t, os_e, np.column_stack([cov[c] for c in OS_COVS])) is None:
        return None
    held = {k: within_tolerance(start[k], by_key[k]) for k in lfs_keys}
    tox = {"neutropenia_g4": np.asarray(s["neutropenia_grade"]) >= 4, "crs_ge_3": np.asarray(s["crs_grade"]) >= SEVERE_GRADE,
           "icans": np.asarray(s["icans"], bool)}
    cache = {}

    def lfs_ok(f):
        got = lfs_figures(female0[f])
        if got is None:
            return False
        for k in lfs_keys:
            room = max(margin * tolerance(k), distance(k, start[k])) if held[k] else distance(k, start[k])
            if distance(k, got[k]) > room + 1e-12 or (held[k] and not within_tolerance(got[k], by_key[k])):
                return False
        return True

    def os_ok(b):
        X = np.column_stack([tox[c][b].astype(float) if c in tox else cov[c] for c in OS_COVS])
        return cox_fit(os_t, os_e, X) is not None

    def ok(bundles, sex):
        for name, perm, check in (("os", bundles, os_ok), ("lfs", sex, lfs_ok)):
            key = (name, np.asarray(perm).tobytes())
            if key not in cache:
                cache[key] = bool(check(np.asarray(perm)))
            if not cache[key]:
                return False
        return True

    ok.start = start
    ok.lfs_figures = lfs_figures
    return ok


def fit_toxicity(s, figures=None, *, seed=0, iterations=100, kicks=2, move_weight=0.05,
                 keep_matched=True, permute_post_ld=True, permute_sex=False, permute_history=False, z_max=1.96,
                 sex_window=None, guard_checks=40, lfs_margin=0.5, params=None):
    """Match Table 2's multivariable models of severe CRS by permutations between patients;
    returns a new latent dict (``s`` is not modified). See the module docstring.

    Four kinds of swap between two patients: of whole toxicity bundles; of post-LD MRD
    (``permute_post_ld``; only pairings allowed by :func:`post_ld_pairing_ok` with ``z_max``);
    of sex (``permute_sex``; with ``sex_window`` not None only pairs allowed by
    :func:`sex_swap_ok`); of whole treatment histories (``permute_history``, :data:`HISTORY_KEYS`;
    both history groups must keep a death). Every state taken must pass :func:`survival_guard` (exact OS/LFS Cox
    fits exist, LFS figures of Table 1A kept; ``params`` the model, default
    parameters/synthetic.yaml; ``lfs_margin`` its ``margin``); sex is not moved when the guard cannot be built. The search is
    a best-improvement descent over all allowed swaps for ``iterations`` steps (the best
    ``guard_checks`` improving candidates are tried in order against the guard); at a local
    optimum ``kicks`` random allowed swaps are made (``numpy.random.default_rng(seed)``) and
    the best state seen is kept. ``move_weight`` per moved item breaks ties towards fewer
    and more similar moves. With ``keep_matched`` a Table 2 figure within its tolerance
    before the stage is never lost. A no-op when nothing is targeted, a key is missing, or
    severe CRS is absent or universal.

    >>> from cartlib.synth.generate import simulate_subjects
    >>> from cartlib.synth.model import load_parameters
    >>> s = simulate_subjects(np.random.default_rng(1), 12, load_parameters())
    >>> t = fit_toxicity(s, iterations=20)
    >>> sorted(t["crs_grade"].tolist()) == sorted(s["crs_grade"].tolist())
    True
    """
    if figures is None:
        figures = paper_figures()
    figures = list(figures)
    out = dict(s)
    targets = table2_targets(figures)
    names = sorted({c for covs in targets.values() for c in covs})
    if not targets or any(k not in s for k in TOXICITY_KEYS):
        return out
    try:
        X0 = np.column_stack([covariate(s, c) for c in names]).astype(np.int64)
    except KeyError:
        return out
    n = X0.shape[0]
    y = (np.asarray(s["crs_grade"]) >= SEVERE_GRADE).astype(np.int64)
    if n < 3 or not y.any() or y.all():
        return out
    rng = np.random.default_rng(seed)
    fixed = np.asarray(s["hlh"], bool) | np.asarray(s["gvhd"], bool)
    flags = _flags(s)
    lc = np.log10(np.asarray(s["cmax_true"], float)) if "cmax_true" in s else np.zeros(n)
    bundle_cost = 1.0 + np.abs(flags[:, None, :] - flags[None, :, :]).sum(axis=2) + np.abs(lc[:, None] - lc[None, :])
    np.fill_diagonal(bundle_cost, 0.0)

    post_cols = [j for j, c in enumerate(names) if c.startswith("postld_mrd_")]
    sex_cols = [j for j, c in enumerate(names) if c == "female"]
    hist_cols = [j for j, c in enumerate(names) if c in ("prior_hsct", "no_prior_hsct")]
    move_history = bool(permute_history and hist_cols and all(k in s for k in HISTORY_KEYS))
    post_ok = None
    if permute_post_ld and post_cols and all(k in s for k in ("mrd_postld", "log10_mrd_postld", "log10_mrd_preld")):
        post_ok = post_ld_pairing_ok(s, z_max)
    guard = survival_guard(s, figures, params, lfs_margin)
    sex_ok = None
    if permute_sex and sex_cols and guard is not None:
        sex_ok = sex_swap_ok(s, sex_window) if sex_window is not None else np.ones((n, n), bool)
        sex_ok = sex_ok if sex_ok is not None else np.ones((n, n), bool)
    post_val = X0[:, post_cols] if post_cols else np.zeros((n, 0), np.int64)
    sex_val = X0[:, sex_cols] if sex_cols else np.zeros((n, 0), np.int64)
    hist_val = X0[:, hist_cols] if hist_cols else np.zeros((n, 0), np.int64)
    iu, ju = np.triu_indices(n, 1)

    dead = ~np.isnan(np.asarray(s["death_day"], float)) if "death_day" in s else None
    prior_hsct = np.asarray(s["prior_hsct"], bool) if "prior_hsct" in s else None

    def passes(st):
        if move_history and dead is not None:
            # both history groups keep a death, so the suite's univariable Cox fit of prior HSCT exists
            prior = prior_hsct[st[3]]
            if not (dead[prior].any() and dead[~prior].any()):
                return False
        return guard is None or guard(st[0], st[2])

    def moves(st):
        """All allowed swaps that change a Table 2 covariate or the outcome: (kind, i, j) arrays."""
        b, p, f, h = st
        ok = [~fixed[iu] & ~fixed[ju] & (y[b[iu]] != y[b[ju]])]
        ok.append(post_ok[iu, p[ju]] & post_ok[ju, p[iu]] & (post_val[p[iu]] != post_val[p[ju]]).any(axis=1)
                  if post_ok is not None else np.zeros(iu.size, bool))
        ok.append(sex_ok[iu, f[ju]] & sex_ok[ju, f[iu]] & (sex_val[f[iu]] != sex_val[f[ju]]).any(axis=1)
                  if sex_ok is not None else np.zeros(iu.size, bool))
        ok.append((hist_val[h[iu]] != hist_val[h[ju]]).any(axis=1) if move_history else np.zeros(iu.size, bool))
        kind = np.concatenate([np.full(o.sum(), k) for k, o in enumerate(ok)])
        return kind, np.concatenate([iu[o] for o in ok]), np.concatenate([ju[o] for o in ok])

    def apply(st, kind, i, j):
        """States after each swap: (m, 3, n) permutation arrays."""
        m = kind.size
        out = np.repeat(np.stack(st)[None], m, axis=0)
        r = np.arange(m)
        out[r, kind, i], out[r, kind, j] = out[r, kind, j], out[r, kind, i]
        return out

    def score(states, keep):
        b, p, f, h = states[:, 0], states[:, 1], states[:, 2], states[:, 3]
        X = np.repeat(X0[None], len(states), axis=0)
        if post_cols:
            X[:, :, post_cols] = post_val[p]
        if sex_cols:
            X[:, :, sex_cols] = sex_val[f]
        if hist_cols:
            X[:, :, hist_cols] = hist_val[h]
        loss, misses, within = table2_loss(X, y[b], targets, names, keep)
        moved = bundle_cost[np.arange(n), b].sum(axis=1) + (p != np.arange(n)).sum(axis=1) + (f != np.arange(n)).sum(axis=1) \
            + (h != np.arange(n)).sum(axis=1)
        return loss + move_weight * moved, misses, within

    ident = np.arange(n)
    cur = np.stack([ident, ident, ident, ident])
    _, _, within = score(cur[None], ())
    keep = {f for f, ok in within.items() if ok[0] and keep_matched}
    cur_val = score(cur[None], keep)[0][0]
    best, best_val = cur, cur_val
    for _ in range(int(iterations)):
        mv = moves(cur)
        if mv[0].size == 0:
            break
        cand = apply(cur, *mv)
        val = score(cand, keep)[0]
        order = np.argsort(val, kind="stable")[:max(int(guard_checks), 1)]
        k = next((int(k) for k in order if val[k] < cur_val - 1e-12 and passes(cand[k])), None)
        if k is not None:
            cur, cur_val = cand[k], val[k]
            if cur_val < best_val - 1e-12:
                best, best_val = cur, cur_val
        else:                                        # local optimum: random kicks the guard allows
            for _ in range(int(kicks)):
                kind, i, j = moves(cur)
                for _ in range(max(int(guard_checks), 1) if kind.size else 0):
                    r = int(rng.integers(kind.size))
                    nxt = apply(cur, kind[r:r + 1], i[r:r + 1], j[r:r + 1])[0]
                    if passes(nxt):
                        cur = nxt
                        break
            cur_val = score(cur[None], keep)[0][0]
    b, p, f, h = best
    for key in TOXICITY_KEYS:
        out[key] = np.asarray(s[key])[b].copy()
    if post_cols:
        for key in ("mrd_postld", "log10_mrd_postld"):
            out[key] = np.asarray(s[key])[p].copy()
    if sex_cols:
        out["female"] = np.asarray(s["female"])[f].copy()
    if move_history:
        for key in HISTORY_KEYS:
            out[key] = np.asarray(s[key])[h].copy()
    return out


def _flags(s):
    """The toxicity flags that define the paper's other toxicity subgroups (Table 3), one row per bundle."""
    return np.column_stack([np.asarray(s["neutropenia_grade"]) >= 4, np.asarray(s["icans"], bool),
                            np.asarray(s["tocilizumab"], bool), np.asarray(s["corticosteroid"], bool),
                            np.asarray(s["crs_grade"]) >= 1]).astype(int)
