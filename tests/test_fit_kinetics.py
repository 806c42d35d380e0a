"""The table stage fit_kinetics (calibration/fit_kinetics.py): Table 3 of the paper."""
import copy

import numpy as np
import pandas as pd
import pytest

from calibration.figures import as_cohort, evaluate, paper_figures
from calibration.fit_kinetics import fit_kinetics
from calibration.kinetics_milp import band_milp
from calibration.kinetics_objective import avg_ranks
from calibration.kinetics_profiles import visit_windows
from cartlib.pk.nca import nca
from cartlib.scorecard import within_tolerance


@pytest.fixture(scope="module")
def base(default_stages):
    """The tables the stage starts from (calibration.pipeline.simulated_tables, shared per session; a private copy)."""
    return copy.deepcopy(default_stages[0])


@pytest.fixture(scope="module")
def fitted(default_cohort):
    """The stage as the default pipeline runs it (settings recorded in parameters/synthetic.yaml):
    the regenerated default cohort and the stage's record (shared with tests/test_synth.py)."""
    return default_cohort


def test_nca_gives_assigned(fitted):
    tables, details = fitted
    res = nca(as_cohort(tables).pk)
    for u, (cmax, tmax, tlast, auc) in details["assigned"].items():
        assert res.loc[u, "cmax"] == cmax
        assert res.loc[u, "tmax"] == tmax
        assert res.loc[u, "tlast"] == tlast
        assert res.loc[u, "auc28"] == pytest.approx(auc, rel=1e-9)


def test_coherent(fitted, base):
    tables, _ = fitted
    pk = tables["pk"]
    assert set(pk["CONC"].map(type)) <= {int, str}
    assert all(v >= 100 for v in pk["CONC"] if not isinstance(v, str))
    res = nca(as_cohort(tables).pk)
    ev = tables["events"]
    hsct = ev[ev.EVENT == "HSCT"].set_index("USUBJID")["DAY"]
    assert (res["tlast"].reindex(hsct.index) <= hsct).all()          # conditioning ends CAR-T
    last = tables["subjects"].set_index("USUBJID")["LAST_CONTACT_DAY"]
    assert (pk.groupby("USUBJID")["DAY"].max() <= last.reindex(pk["USUBJID"].unique())).all()
    assert res["tmax"].between(4, 21).all()
    for name in ("subjects", "events", "labs"):
        pd.testing.assert_frame_equal(tables[name], base[name])


def test_valid_cohort(fitted, tmp_path):
    from cartlib.io import load_cohort
    from cartlib.synth.generate import write_cohort

    write_cohort(fitted[0], tmp_path)
    assert len(load_cohort(tmp_path).pk) == len(fitted[0]["pk"])


def test_deterministic(base):
    kw = dict(iterations=150, iterations_t=150, rounds=1, restarts=1, restarts_r=1, descend=False)
    a = fit_kinetics(base, **kw)
    b = fit_kinetics(base, **kw)
    pd.testing.assert_frame_equal(a["pk"], b["pk"])


def test_tlast_on_visit_days(fitted, base):
    """Every Tlast is a day of the patient's own schedule window, >= Tmax."""
    from cartlib.synth.model import load_parameters

    _, lo, hi = visit_windows(load_parameters())
    for u, (cmax, tmax, tlast, auc) in fitted[1]["assigned"].items():
        assert tlast >= tmax
        assert ((tlast >= lo) & (tlast <= hi)).any(), (u, tlast)


def test_no_targets_is_noop(base):
    out = fit_kinetics(base, figures=[])
    pd.testing.assert_frame_equal(out["pk"], base["pk"])


def test_table3_figures(fitted):
    res = evaluate(fitted[0])
    fig = {f["key"]: f["value"] for f in paper_figures()}
    keys = [f for f in paper_figures() if f["key"].startswith("pk.table3.") and not f["key"].endswith(".n")
            and f.get("feasible", True)]
    good = [f["key"] for f in keys if within_tolerance(res.get(f["key"], np.nan), f)]
    # 144 of 153 with the recorded settings (partial; see paper.yaml); the pre- and post-LD
    # MRD >= 1e-2 Tlast medians provably conflict (module doc)
    assert len(good) >= 144
    assert res["pk.cmax_median"] == 30860 and res["pk.tmax_min"] == 4 and res["pk.expansion_n"] == 49
    # bca.tlast_r (0.51) is marked reproduced: false since the history swaps (tests/test_paper.py)
    for key in ("pk.cmax_tlast_r", "pk.auc28_tlast_r"):
        assert abs(res[key] - fig[key]) <= 0.05, key
    for key in ("pk.cmax_mrdcr_mwu_p", "pk.auc28_mrdcr_mwu_p"):   # tlast: see the report
        assert res[key] < 0.05 and abs(res[key] - fig[key]) <= 0.05, key


def test_avg_ranks_agree_with_scipy():
    from scipy.stats import rankdata

    x = np.random.default_rng(0).integers(0, 12, 60).astype(float)    # many ties
    r, ties = avg_ranks(x)
    assert np.array_equal(r, rankdata(x))
    _, counts = np.unique(x, return_counts=True)
    assert ties == float((counts ** 3 - counts).sum())


def test_cmax_medians_cannot_all_hold_on_the_default_cohort(fitted):
    """Why some Table 3 Cmax medians are marked not reproduced in paper.yaml. The two non-MRD-CR
    patients must hold the two lowest Cmax (pk.cmax_mrdcr_mwu_p = 0.017 +- 0.002 needs U = 0). With
    that, even the necessary counts of the subgroup medians (band_milp, relax=True: no assignment
    of values to ranks exists when they fail) cannot all be met on the default cohort's
    subgroup memberships; without it they can."""
    from cartlib.analysis import analysis_table
    from cartlib.params import defaults

    tables, details = fitted
    scorer = details["state"][-1]
    a = analysis_table(as_cohort(tables), defaults())
    neg = a["d28_mrd_neg"].to_numpy(float) == 1
    cmax = a["cmax"].to_numpy(float)
    pin = {f["key"]: f["value"] for f in paper_figures()}["pk.cmax_median"]
    _, slack = band_milp(scorer, 0, cmax, ~neg, pin, relax=True)
    assert slack >= 1 - 1e-9
    _, free = band_milp(scorer, 0, cmax, np.zeros(neg.size, bool), pin, relax=True)
    assert free == pytest.approx(0, abs=1e-9)
    lowest = np.argsort(cmax, kind="stable")[:2]
    assert set(lowest) == set(np.flatnonzero(~neg))        # as the stage leaves them
