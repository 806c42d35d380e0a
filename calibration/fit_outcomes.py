"""Calibration stage on the latent patients: fit the outcome assignment to the OS/LFS Cox models
(paper Table 1A/B) and the transplant subgroup of Figure 1 (docs/SYNTHETIC.md).

Runs after :func:`calibration.nudges.nudge` (and after the toxicity stage), before the
tables are built. It never types numbers into rows; it re-assigns model-generated quantities:

* **outcome bundles** -- (relapse day, CD19 status, whether and when the patient dies, and
  usually the infusion date, i.e. the follow-up) -- are swapped between patients in CR (the
  refractory patient keeps its own). A bundle may only go to a patient on whom it is
  clinically coherent: a relapse after a bridging transplant comes at least 14 days after it
  (as in the model), a CD19-positive relapse comes after the loss of B-cell aplasia, every
  event before the patient's last contact;
* **which relapsed patients die** (the count is kept) and **who dies of NRM** (the count is
  kept; NRM only after a transplant when the model put it there);
* **when they die**: the death delay after relapse (after HSCT for NRM) is a quantile of the
  model's own log-normal delay, restricted to its central 95 % (|z| <= 1.96); the refractory
  patient's death (the earliest, pinned by ``nudge``) is kept;
* **infusion dates** (hence survivors' follow-up) are permuted between patients;
* optionally (``permute_icans``) **ICANS** with its grade moves between two patients of the same CRS
  grade and corticosteroid use (the model's ICANS rises with CRS grade; steroids treat both), never
  leaving a group of a Table 2 covariate without ICANS;
* one **single-value nudge** (:func:`_nudge_group_medians`): a survivor whose follow-up is the
  median observed OS time of a transplant subgroup may move by at most a month to the paper's.

Every count, the relapse and transplant days (as sets), the follow-up median/min/max and the
5-year OS and LFS are held (hard constraints). Both groups of every 0/1 covariate of the suite's
univariable screen keep an OS death and an LFS event (:data:`~.outcome_objective.EMPTY_GROUP_PENALTY` per group that
has none), so every univariable Cox fit has an estimate. The rest is a deterministic simulated annealing
(numpy ``Generator`` seeded by ``seed``) of the misses, in units of paper.yaml's tolerances,
of :func:`~.outcome_objective.target_keys` (:func:`~.outcome_objective.miss`, i.e. :func:`cartlib.scorecard.miss` with the sign), computed
with a small exact Efron Cox fit and log-rank test on arrays derived as :mod:`cartlib.derive`
derives them from the tables (B-cell aplasia durations on the lab days the tables will use,
``s["bcell_visit_days"]``). The LFS figures (Table 1A) weigh most (:data:`~.outcome_objective.PRIORITY`); figures
already matched when the stage starts weigh more and are penalised heavily once they leave their
tolerance; the best state is only ever taken among those that keep them matched. A greedy polish
then tries every move of a death to another patient on the same day (with the follow-up swap, so
both KM curves stay exactly as they were), and a second round (``rounds``) restarts the annealing
from the result, holding what it matched.
The suite's own Cox fit (lifelines) is run on the result; if it fails where Newton does not, the
best earlier state for which it succeeds is taken.
"""
from __future__ import annotations

import math

import numpy as np

from cartlib.derive import DAYS_PER_MONTH
from cartlib.synth.model import load_parameters
from cartlib.synth.outcomes import settle_follow_up

from .figures import paper_figures
from .outcome_objective import HELD, OutcomeProblem, miss
from .table2_objective import covariate

Z_MAX = 1.96
TRACE = None   # a list to record (iteration, move, candidate loss, current loss) when debugging



def fit_outcomes(s, figures=None, *, seed=0, iterations=2000, temperature=(100.0, 0.3), polish_rounds=3,
                 rounds=2, permute_icans=False, params=None):
    """Re-assign outcomes (bundles, deaths, death delays, follow-up) to fit the OS/LFS Cox models
    and the transplant subgroup figures of ``figures`` (default paper.yaml); returns a new
    latent dict (``s`` is not modified). ``seed``/``iterations``/``temperature`` (start, end
    of the geometric cooling) control the annealing; ``params`` the model (delay distributions,
    lab schedule; default parameters/synthetic.yaml); ``permute_icans`` adds the ICANS moves
    (module doc).

    No-op when the start state cannot be scored (e.g. tiny cohorts without events).

    >>> from cartlib.synth.generate import simulate_subjects
    >>> from cartlib.synth.model import load_parameters
    >>> s = simulate_subjects(np.random.default_rng(0), 8, load_parameters())
    >>> t = fit_outcomes(s, iterations=20)
    >>> int(np.isnan(t["death_day"]).sum()) == int(np.isnan(s["death_day"]).sum())
    True
    """
    params = params or load_parameters()
    figures = paper_figures() if figures is None else list(figures)
    s = dict(s)
    n = s["female"].size
    prob = OutcomeProblem(s, figures, params)
    o = prob.o
    rng = np.random.default_rng(seed)

    death0, rel0 = s["death_day"].copy(), s["relapse_day"].copy()
    dead0 = ~np.isnan(death0)
    relapsed0 = ~np.isnan(rel0)
    hsct_day = s["hsct_day"]
    cr = s["cr"].astype(bool)
    # state: per patient relapse day, CD19neg, dies flag, z of the death delay; survivors' admin
    st = {"relapse_day": rel0.copy(), "cd19neg": s["cd19neg"].astype(bool).copy(),
          "dies": dead0.copy(), "z": np.zeros(n), "admin_day": s["admin_day"].astype(float).copy()}
    # ICANS may move between two patients of the same CRS grade and corticosteroid use (the model's
    # ICANS rises with CRS grade; steroids treat both): the (CRS, steroid, ICANS) triples are kept
    icans_ok = None
    if permute_icans and all(k in s for k in ("icans", "icans_grade", "crs_grade", "corticosteroid")):
        st["neuro"] = np.arange(n)
        crs, ster = np.asarray(s["crs_grade"]), np.asarray(s["corticosteroid"], bool)
        icans_ok = (crs[:, None] == crs[None, :]) & (ster[:, None] == ster[None, :])
        has_icans = np.asarray(s["icans"], bool)
        # nor may it leave a group of a Table 2 covariate without ICANS (the suite's univariable ICANS
        # logistic fit would then have no estimate)
        icans_groups = [g for c in ("female", "preld_mrd_lt_1e-3", "postld_mrd_lt_1e-3", "dose_lt_median")
                        for x in [covariate(s, c).astype(bool)] for g in (x, ~x) if has_icans[g].any()]
    nrm_hsct = bool(np.any(dead0 & ~relapsed0 & ~np.isnan(hsct_day)))
    rel_med, rel_sd = o["death_after_relapse_log_median"], o["death_after_relapse_log_sd"]
    nrm_med, nrm_sd = o["nrm_after_hsct_log_median"], o["nrm_after_hsct_log_sd"]
    zlo, zhi = np.full(n, -Z_MAX), np.full(n, Z_MAX)
    fixed_death = np.zeros(n, bool)     # deaths whose day the stage keeps (refractory; NRM w/o HSCT)
    for i in np.flatnonzero(dead0):
        if relapsed0[i]:
            z = math.log(max(death0[i] - rel0[i], 1.0) / rel_med) / rel_sd
        elif not np.isnan(hsct_day[i]):
            z = math.log(max(death0[i] - hsct_day[i], 1.0) / nrm_med) / nrm_sd
        else:
            z, fixed_death[i] = 0.0, True
        st["z"][i] = z
        zlo[i], zhi[i] = min(zlo[i], z), max(zhi[i], z)
    fixed_death |= dead0 & ~cr          # the refractory patient's death stays (earliest death)

    def death_days(x):
        d = np.full(n, np.nan)
        for i in np.flatnonzero(x["dies"]):
            if fixed_death[i]:
                d[i] = death0[i]
            elif not np.isnan(x["relapse_day"][i]):
                d[i] = np.round(x["relapse_day"][i] + rel_med * math.exp(rel_sd * x["z"][i]))
            else:
                d[i] = np.round(hsct_day[i] + nrm_med * math.exp(nrm_sd * x["z"][i]))
        return d

    def feasible(x, d):
        # every death observed (before the last follow-up) and after relapse / HSCT
        alive_ok = np.all(d[x["dies"]] <= x["admin_day"][x["dies"]])
        return bool(alive_ok)

    def full(x):
        d = death_days(x)
        return {"death_day": d, "relapse_day": x["relapse_day"], "admin_day": x["admin_day"],
                "neuro": x.get("neuro")}, d

    ref_state, d_ref = full(st)
    if not feasible(st, d_ref):
        return s
    res = prob.evaluate(ref_state)
    held_ref = {k: res.get(k) for k in HELD}
    prob.protect = {k: {pre: res.get(pre + k) for pre in ["", *(f"_s{j}." for j in range(1, len(prob.scheds)))]}
                    for k, v, rule in prob.targets if abs(miss(res.get(k), rule)) <= 1}
    cur = prob.loss(res, held_ref)
    if not np.isfinite(cur):
        return s
    best, best_loss = {k: v.copy() for k, v in st.items()}, cur
    history = [best]
    swappable = np.flatnonzero(cr)
    t0, t1 = temperature
    for it in range(int(iterations) if n >= 2 else 0):
        temp = t0 * (t1 / t0) ** (it / max(iterations - 1, 1))
        x = {k: v.copy() for k, v in st.items()}
        move = rng.integers(5 if icans_ok is None else 6)
        if move == 5:                               # ICANS moves to a like patient (see icans_ok)
            now = has_icans[x["neuro"]]
            if not now.any():
                continue
            i = rng.choice(np.flatnonzero(now))
            partners = np.flatnonzero(icans_ok[i] & ~now)
            if partners.size == 0:
                continue
            j = rng.choice(partners)
            x["neuro"][i], x["neuro"][j] = x["neuro"][j], x["neuro"][i]
            if not all(has_icans[x["neuro"]][g].any() for g in icans_groups):
                continue
        elif move == 0 and swappable.size > 1:      # swap outcome bundles of two patients in CR
            i, j = rng.choice(swappable, 2, replace=False)
            for k in ("relapse_day", "cd19neg", "dies", "z") + (("admin_day",) if rng.random() < 0.7 else ()):
                x[k][i], x[k][j] = x[k][j], x[k][i]
            ok = True
            for a in (i, j):
                r = x["relapse_day"][a]
                if not np.isnan(r):
                    ok &= r <= x["admin_day"][a]
                    ok &= np.isnan(hsct_day[a]) or r > hsct_day[a] + 14
                    ok &= bool(x["cd19neg"][a]) or not s["bca"][a] or r >= s["bca_end_true"][a]
                elif x["dies"][a]:     # an NRM death: after HSCT if the model put it there
                    ok &= (not np.isnan(hsct_day[a])) == nrm_hsct
            if not ok or fixed_death[i] or fixed_death[j]:
                continue
        elif move == 1:                             # another relapsed / non-relapsed patient dies
            rel = ~np.isnan(x["relapse_day"])
            grp = rel if rng.random() < 0.75 else ~rel & cr
            if not grp.any():
                continue
            dying = np.flatnonzero(grp & x["dies"] & ~fixed_death)
            living = np.flatnonzero(grp & ~x["dies"])
            if dying.size == 0 or living.size == 0:
                continue
            i, j = rng.choice(dying), rng.choice(living)
            if not rel[j] and (not np.isnan(hsct_day[j])) != nrm_hsct:
                continue
            x["dies"][i], x["dies"][j] = False, True
            if rng.random() < 0.7:   # keep the survivors' follow-up times (pinned by nudge)
                x["admin_day"][i], x["admin_day"][j] = x["admin_day"][j], x["admin_day"][i]
            x["z"][j] = np.clip(rng.normal(0.0, 0.7), zlo[j], zhi[j])
            if rng.random() < 0.5:   # j dies on i's day if its delay allows (with the follow-up swap, the
                d_i = death_days(st)[i]   # KM curves, hence 5-year OS/LFS, stay exactly as they were)
                base = x["relapse_day"][j] if rel[j] else hsct_day[j]
                med, sd = (rel_med, rel_sd) if rel[j] else (nrm_med, nrm_sd)
                if d_i > base:
                    z = math.log((d_i - base) / med) / sd
                    if zlo[j] <= z <= zhi[j]:
                        x["z"][j] = z
        elif move in (2, 3):                        # change one death delay (model quantile)
            dying = np.flatnonzero(x["dies"] & ~fixed_death)
            if dying.size == 0:
                continue
            i = rng.choice(dying)
            x["z"][i] = np.clip(x["z"][i] + rng.normal(0, 0.4), zlo[i], zhi[i])
        else:                                       # two patients exchange follow-up (infusion dates)
            i, j = rng.choice(n, 2, replace=False)
            x["admin_day"][i], x["admin_day"][j] = x["admin_day"][j], x["admin_day"][i]
            ok = True
            for a in (i, j):
                r = x["relapse_day"][a]
                ok &= np.isnan(r) or r <= x["admin_day"][a]
            if not ok:
                continue
        state, d = full(x)
        if not feasible(x, d):
            continue
        new = prob.loss(prob.evaluate(state), held_ref)
        if TRACE is not None:
            TRACE.append((it, int(move), float(new), float(cur)))
        if new <= cur or rng.random() < math.exp(-(new - cur) / temp):
            st, cur = x, new
            if cur < best_loss and prob.lost == 0:   # the result keeps every figure matched at the start
                best, best_loss = {k: v.copy() for k, v in st.items()}, cur
                history.append(best)
    # polish: move each death to another patient on the same day (with the follow-up swap), greedily
    for _round in range(int(polish_rounds)):
        d_best = death_days(best)
        moves = []
        for i in np.flatnonzero(best["dies"] & ~fixed_death):
            rel_i = not np.isnan(best["relapse_day"][i])
            for j in np.flatnonzero(~best["dies"] & cr):
                rel_j = not np.isnan(best["relapse_day"][j])
                if rel_i != rel_j or (not rel_j and (not np.isnan(hsct_day[j])) != nrm_hsct):
                    continue
                base = best["relapse_day"][j] if rel_j else hsct_day[j]
                med, sd = (rel_med, rel_sd) if rel_j else (nrm_med, nrm_sd)
                if not d_best[i] > base:
                    continue
                z = math.log((d_best[i] - base) / med) / sd
                if not zlo[j] <= z <= zhi[j]:
                    continue
                x = {k: v.copy() for k, v in best.items()}
                x["dies"][i], x["dies"][j], x["z"][j] = False, True, z
                x["admin_day"][i], x["admin_day"][j] = x["admin_day"][j], x["admin_day"][i]
                if not np.isnan(x["relapse_day"][i]) and x["relapse_day"][i] > x["admin_day"][i]:
                    continue
                state, d = full(x)
                if not feasible(x, d):
                    continue
                new = prob.loss(prob.evaluate(state), held_ref)
                if prob.lost == 0:
                    moves.append((new, int(i), int(j), x))
        if not moves:
            break
        new, _, _, x = min(moves, key=lambda m: m[:3])
        if not new < best_loss - 1e-9:
            break
        best, best_loss = x, new
        history.append(best)
    # the suite's Cox fits (lifelines first) must succeed too: take the best state for which they do
    start = {k: v.copy() for k, v in history[0].items()}
    best = next((h for h in reversed(history) if prob.suite_fits(full(h)[0])), start)
    best = _nudge_group_medians(prob, best, full, held_ref)
    final, d = full(best)
    out = dict(s)
    out["relapse_day"] = best["relapse_day"]
    out["cd19neg"] = best["cd19neg"]
    out["death_day"] = d
    out["death_relapse"] = best["dies"] & ~np.isnan(best["relapse_day"])
    out["admin_day"] = best["admin_day"]
    if best.get("neuro") is not None:
        for key in ("icans", "icans_grade"):
            out[key] = np.asarray(s[key])[best["neuro"]].copy()
    out = settle_follow_up(out)
    if rounds > 1:   # another round from the result: what it matched is now held too
        return fit_outcomes(out, figures, seed=seed + 1, iterations=iterations, temperature=temperature,
                            polish_rounds=polish_rounds, rounds=rounds - 1, permute_icans=permute_icans,
                            params=params)
    return out


MEDIAN_NUDGE_DAYS = 31   # at most ~1 month


def _nudge_group_medians(prob, st, full, held_ref):
    """Single-value nudge: where a transplant-subgroup median of observed OS times is a survivor's
    follow-up that misses the paper, move that survivor's last follow-up to the paper's value
    (at most MEDIAN_NUDGE_DAYS days) if no figure gets worse and the held ones still hold."""
    state, _ = full(st)
    res = prob.evaluate(state)
    cur = prob.loss(res, held_ref)
    for key, value, rule in prob.targets:
        if not key.startswith("transplant.os_time_median_mo.") or abs(miss(res.get(key), rule)) <= 1:
            continue
        _, _, name, group = key.split(".")
        m = prob.strata[name] & (prob.hsct if group == "hsct" else ~prob.hsct)
        idx = np.flatnonzero(m)
        if idx.size % 2 == 0 or idx.size == 0:
            continue
        d, _ = full(st)
        os_days = np.where(np.isnan(d["death_day"]), st["admin_day"], d["death_day"])
        mid = idx[np.argsort(os_days[idx], kind="stable")[idx.size // 2]]
        target = round(value * DAYS_PER_MONTH)
        if st["dies"][mid] or abs(target - st["admin_day"][mid]) > MEDIAN_NUDGE_DAYS:
            continue
        x = {k: v.copy() for k, v in st.items()}
        x["admin_day"][mid] = target
        r = x["relapse_day"][mid]
        if not np.isnan(r) and r > target:
            continue
        new_state, _ = full(x)
        new_res = prob.evaluate(new_state)
        new = prob.loss(new_res, held_ref)
        if new < cur and prob.lost == 0:
            st, res, cur = x, new_res, new
    return st
