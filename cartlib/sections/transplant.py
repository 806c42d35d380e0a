"""Section 05: HSCT after CAR-T (the paper's stratified comparison, and analyses free of immortal time)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..params import mrd_label
from ..stats.competing import gray_test
from ..stats.survival import KaplanMeier, logrank_test
from ..stats import timevarying as tv
from ..tables import captioned, format_ci, format_p, not_estimable
from .common import (ENDPOINTS, cumulative_incidence, max_or_none, median_or_none, min_or_none, months,
                     nan_to_none, or_reason, paper_sentence, survival_data)

ONE_GROUP = "only one of the HSCT / no-HSCT groups has patients"
NO_HSCT = "no patient had HSCT"


def strata(table: pd.DataFrame, params: dict[str, Any]) -> dict[str, pd.Series]:
    """The paper's tumour-burden strata (boolean masks), named as the results keys spell them."""
    low, high = params["mrd_low_cutoff"], params["mrd_high_cutoff"]
    out = {"all": pd.Series(True, index=table.index)}
    for when, col in (("preld", "MRD_PRELD"), ("postld", "MRD_POSTLD")):
        out[f"{when}_mrd_lt_{mrd_label(low)}"] = table[col] < low
        out[f"{when}_mrd_ge_{mrd_label(high)}"] = table[col] >= high
    return out


def hsct_groups(table: pd.DataFrame) -> pd.Series:
    """'HSCT' / 'no HSCT' labels of the paper's (time-fixed, 'ever transplanted') comparison."""
    return table["hsct_after"].map({1: "HSCT", 0: "no HSCT"})


def fixed_comparison(table: pd.DataFrame, endpoint: str):
    """Log-rank test of ever vs never transplanted from day 0 (has immortal-time bias: see notebook 05)."""
    d = survival_data(table, endpoint)
    return logrank_test(d["time_mo"], d["event"], hsct_groups(table))


def os_start_stop(table: pd.DataFrame) -> pd.DataFrame:
    """OS in months as start/stop rows split at the HSCT day (patients with an OS time of 0 left out)."""
    # an OS time of 0 days is an empty (0, 0] interval, which start/stop data cannot hold (R's coxph drops it)
    table = table.loc[table["os_days"] > 0, ["os_days", "os_event", "hsct_day"]]   # not every column's rows
    return tv.to_start_stop(months(table["os_days"]), table["os_event"], months(table["hsct_day"]))


def hsct_comparison(sub: pd.DataFrame, endpoint: str):
    """(log-rank test of HSCT vs no HSCT, or None; why there is no p-value, or None)."""
    if sub.empty:
        return None, "no patient in this stratum"
    if sub["hsct_after"].nunique() < 2:
        return None, ONE_GROUP
    test = fixed_comparison(sub, endpoint)
    return test, test.reason


def time_varying_os(table: pd.DataFrame):
    """Cox model of OS with HSCT as a time-varying covariate (start/stop split at the HSCT day)."""
    data = os_start_stop(table)
    return tv.TimeVaryingCox().fit(data), tv.mantel_byar_test(data)


def landmark_os(table: pd.DataFrame, landmark_day: float):
    """Landmark comparison of OS by HSCT before ``landmark_day`` among patients alive then."""
    data = tv.landmark(table, landmark_day)
    return data, (logrank_test(months(data["os_days"]), data["os_event"], data["hsct_by_landmark"])
                  if data["hsct_by_landmark"].nunique() == 2 else None)


def _stratum_keys(name: str, sub: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for endpoint in ("os", "lfs"):
        test, _ = hsct_comparison(sub, endpoint)
        out[f"transplant.{endpoint}_logrank_p.{name}"] = nan_to_none(test.p_value) if test else None
    for flag, label in ((1, "hsct"), (0, "no_hsct")):
        grp = sub[sub["hsct_after"] == flag]
        if len(grp):
            fit = KaplanMeier(ci=params["km_ci"]).fit(months(grp["os_days"]), grp["os_event"])
            out[f"transplant.os_median_mo.{name}.{label}"] = nan_to_none(fit.median_)
            out[f"transplant.os_time_median_mo.{name}.{label}"] = median_or_none(months(grp["os_days"]))
            nrm = cumulative_incidence(grp, cause=2).at(params["horizon_months"])[0]
            out[f"transplant.nrm_5y.{name}.{label}"] = nan_to_none(nrm)
        else:
            for key in ("os_median_mo", "os_time_median_mo", "nrm_5y"):
                out[f"transplant.{key}.{name}.{label}"] = None
    return out


def results(cohort, table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """transplant.* keys."""
    hsct = months(table["hsct_day"].dropna())
    out: dict[str, Any] = {
        "transplant.hsct_after_n": int(table["hsct_after"].sum()),
        "transplant.hsct_median_mo": median_or_none(hsct),
        "transplant.hsct_min_mo": min_or_none(hsct),
        "transplant.hsct_max_mo": max_or_none(hsct),
    }
    # each stratum with only the columns its comparisons read: slicing the wide table row by row
    # for 5 strata x 2 groups cost more than the tests
    needed = ["hsct_after", *[c for pair in ENDPOINTS.values() for c in pair], "crr_days", "crr_status"]
    for name, mask in strata(table, params).items():
        out.update(_stratum_keys(name, table.loc[mask, needed], params))
    two_groups = table["hsct_after"].nunique() == 2
    gray = gray_test(months(table["crr_days"]), table["crr_status"], table["hsct_after"], cause=1) if two_groups else None
    out["transplant.cir_gray_p"] = nan_to_none(gray.p_value) if gray else None
    if two_groups:
        model, mantel_byar = time_varying_os(table)
        row = model.summary.iloc[0]
        out.update({"transplant.tv_cox_os_hr": nan_to_none(row["hr"]), "transplant.tv_cox_os_p": nan_to_none(row["p"]),
                    "transplant.mantel_byar_os_p": nan_to_none(mantel_byar.p_value)})
    else:
        out.update(dict.fromkeys(["transplant.tv_cox_os_hr", "transplant.tv_cox_os_p", "transplant.mantel_byar_os_p"]))
    _, lm_test = landmark_os(table, params["landmark_day"])
    out["transplant.landmark_os_logrank_p"] = nan_to_none(lm_test.p_value) if lm_test else None
    return out


# -- displays for notebook 05 ---------------------------------------------------------------

STRATUM_TITLES = {"all": "all patients"}


def _title(name: str) -> str:
    if name in STRATUM_TITLES:
        return STRATUM_TITLES[name]
    when, _, op, cut = name.split("_")
    mantissa, exponent = cut.split("e")
    power = "10" + exponent.translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    value = power if mantissa == "1" else f"{mantissa}×{power}"
    return f"{'pre' if when == 'preld' else 'post'}-LD MRD {'<' if op == 'lt' else '≥'} {value}"


def plot_strata(table: pd.DataFrame, params: dict[str, Any], endpoint: str = "os"):
    """KM of ``endpoint`` by HSCT within each tumour-burden stratum (the paper's Figure 1 layout)."""
    import matplotlib.pyplot as plt

    from ..plots import FIGURE_WIDTH_IN, plot_survival

    days, event = ENDPOINTS[endpoint]
    groups = {k: v for k, v in strata(table, params).items() if k != "all"}
    fig, axes = plt.subplots(2, 2, figsize=(FIGURE_WIDTH_IN, 6.6), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.12, hspace=0.06)   # room for the at-risk rows
    end = float(months(table[days]).max()) if len(table) else 1.0
    for ax, (name, mask) in zip(axes.ravel(), groups.items()):
        sub = table[mask]
        fits = {label: KaplanMeier(ci=params["km_ci"]).fit(months(g[days]), g[event], label=label)
                for label, g in sub.groupby(hsct_groups(sub), sort=True)}
        fits = {k: fits[k] for k in ("HSCT", "no HSCT") if k in fits}   # same order and colours in every panel
        test, _ = hsct_comparison(sub, endpoint)
        # the p on a second line: a stratum's name and its p do not fit a half-width panel in one
        p_text = f"\nlog-rank p {format_p(test.p_value)}" if test and pd.notna(test.p_value) else ""
        what = "Overall survival" if endpoint == "os" else "Leukaemia-free survival"
        plot_survival(fits, ax=ax, end=end, title=f"{endpoint.upper()}: {_title(name)}{p_text}",
                      ylabel=f"{what} probability", empty_reason="no patient in this stratum")
    for ax in axes[:, 1]:
        ax.set_ylabel("")   # the left column names the probability for its row
    return fig


def strata_figure(table: pd.DataFrame, params: dict[str, Any], endpoint: str = "os", figures_dir: str = ""):
    """:func:`plot_strata`, captioned and published."""
    from ..plots import publish

    what = "overall survival" if endpoint == "os" else "leukaemia-free survival"
    n_hsct = int(table["hsct_after"].sum())
    return publish(plot_strata(table, params, endpoint), f"transplant_{endpoint}_strata",
                   f"Kaplan–Meier {what} from infusion by HSCT after CAR-T (ever vs never transplanted, the paper's "
                   f"comparison, biased by immortal time) within four tumour-burden strata, N = {len(table)} "
                   f"({n_hsct} HSCT); log-rank p in each title; numbers at risk under each panel."
                   + paper_sentence([(f"log-rank p, {_title(s)}", f"transplant.{endpoint}_logrank_p.{s}", "{:.3f}")
                                     for s in strata(table, params) if s != "all"]),
                   f"Four panels of Kaplan–Meier curves, HSCT in vermillion and no HSCT in blue, months since infusion "
                   f"on the x axes (ticked every 12), {what} probability on the y axes; each title names the stratum "
                   "and the log-rank p.", figures_dir)


def _group_cell(value, spec: str, n_patients: int, missing: str) -> str:
    """One group's value as text; ``missing`` when the group has patients but no value."""
    if value is not None:
        return spec.format(value)
    return missing if n_patients else not_estimable("no patients")


def strata_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Per stratum: n by group, median OS, NRM at ``horizon_months`` and log-rank p of OS and LFS.

    The comparison is the paper's fixed one (ever vs never transplanted). A median the
    curve does not reach reads ``not reached``; a value that cannot be computed (an empty
    group, follow-up shorter than the horizon, a single group) reads ``not estimable (reason)``.
    """
    horizon = params["horizon_months"]
    short = not_estimable(f"follow-up shorter than {horizon:g} months")
    rows = []
    for name, mask in strata(table, params).items():
        sub = table[mask]
        k = _stratum_keys(name, sub, params)
        n = {"hsct": int((sub["hsct_after"] == 1).sum()), "no_hsct": int((sub["hsct_after"] == 0).sum())}
        row = {"stratum": _title(name), "n HSCT / no HSCT": f"{n['hsct']} / {n['no_hsct']}"}
        for column, key, spec, missing in (("median OS, mo (HSCT / no)", "os_median_mo", "{:.1f}", "not reached"),
                                           (f"{horizon:g}-month NRM, % (HSCT / no)", "nrm_5y", "{:.1%}", short)):
            row[column] = (" / ".join(_group_cell(k[f"transplant.{key}.{name}.{g}"], spec, n[g], missing) for g in n)
                           if len(sub) else not_estimable("no patient in this stratum"))
        for endpoint in ("os", "lfs"):
            _, why = hsct_comparison(sub, endpoint)
            row[f"{endpoint.upper()} log-rank p"] = or_reason(k[f"transplant.{endpoint}_logrank_p.{name}"], format_p, why)
        rows.append(row)
    return captioned(pd.DataFrame(rows).set_index("stratum"),
                     f"HSCT after CAR-T by tumour-burden stratum, N = {len(table)}: patients per group, Kaplan–Meier "
                     f"median OS, non-relapse mortality at {horizon:g} months (Aalen–Johansen) and log-rank p of OS "
                     "and LFS (ever vs never transplanted, from infusion).")


def gray_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Gray's test of relapse incidence, HSCT vs no HSCT, with each group's incidence at ``horizon_months``."""
    horizon = params["horizon_months"]
    fit = cumulative_incidence(table, cause=1, groups=hsct_groups(table))
    test = gray_test(months(table["crr_days"]), table["crr_status"], hsct_groups(table), cause=1)
    short = f"follow-up shorter than {horizon:g} months"
    rows = [(g, or_reason(fit.at(horizon, group=g)[0], "{:.1%}", short)) for g in fit.groups_]
    rows.append(("Gray's test", f"chi-square {test.statistic:.3f}, df {test.df}, p {format_p(test.p_value)}"
                 if pd.notna(test.p_value) else not_estimable(test.reason)))
    title = f"relapse incidence at {horizon:g} months"
    return captioned(pd.DataFrame(rows, columns=[title, "value"]).set_index(title),
                     f"Cumulative incidence of relapse (non-relapse death competing) by HSCT after CAR-T, N = "
                     f"{len(table)}: Aalen–Johansen estimate at {horizon:g} months per group and Gray's test.")


def immortal_time_table(table: pd.DataFrame) -> pd.DataFrame:
    """How much event-free time the HSCT group gets by construction, and the early events the other group keeps."""
    hsct = table[table["hsct_after"] == 1]
    never = table[table["hsct_after"] == 0]
    latest = hsct["hsct_day"].max() if len(hsct) else float("nan")
    early = never[(never["lfs_event"] == 1) & (never["lfs_days"] <= latest)]
    rows = [("HSCT group: immortal person-months before HSCT", f"{months(hsct['hsct_day']).sum():.1f}"),
            ("HSCT group: median months from infusion to HSCT", or_reason(median_or_none(months(hsct["hsct_day"])),
                                                                          "{:.1f}", NO_HSCT)),
            ("no-HSCT group: relapses or deaths before the last HSCT day",
             f"{len(early)} of {len(never)}" if len(hsct) else not_estimable(NO_HSCT))]
    return captioned(pd.DataFrame(rows, columns=["immortal time", "value"]).set_index("immortal time"),
                     f"Immortal time in the ever-vs-never HSCT comparison, N = {len(table)}: event-free time the HSCT "
                     "group has by construction, and the early events the other group keeps.")


def time_varying_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """HSCT effect on OS: fixed (biased) Cox, time-varying Cox, Mantel–Byar and landmark tests."""
    from ..stats.cox import CoxModel

    def hr_text(row) -> str:
        return (format_ci(row["hr"], row["hr_lo"], row["hr_hi"]) if pd.notna(row["hr"])
                else not_estimable(row.get("reason")))

    rows = []
    fixed = CoxModel().fit(survival_data(table, "os"), "time_mo", "event", ["hsct_after"]).summary.iloc[0]
    rows.append(("Cox, HSCT fixed at day 0 (immortal-time bias)", hr_text(fixed), format_p(fixed["p"])))
    model, mb = time_varying_os(table)
    rows.append(("Cox, HSCT time-varying", hr_text(model.summary.iloc[0]), format_p(model.summary.iloc[0]["p"])))
    rows.append(("Mantel–Byar test", "", or_reason(mb.p_value, format_p, mb.reason)))
    data, lm = landmark_os(table, params["landmark_day"])
    why = (lm.reason if lm else ONE_GROUP) if len(data) else "no patient followed beyond the landmark"
    rows.append((f"landmark at day {params['landmark_day']:g} (n = {len(data)}), log-rank", "",
                 or_reason(lm.p_value if lm else None, format_p, why)))
    return captioned(pd.DataFrame(rows, columns=["OS analysis", "HR (95% CI)", "p"]).set_index("OS analysis"),
                     f"Effect of HSCT on overall survival, N = {len(table)}: the biased fixed comparison beside three "
                     "analyses free of immortal time; hazard ratio of HSCT (95% Wald CI) and p.")


def plot_simon_makuch(table: pd.DataFrame):
    """Simon–Makuch curves of OS: patients move to the HSCT curve on their transplant day."""
    from ..plots import plot_not_estimable, plot_simon_makuch

    title = "OS by HSCT as it happens (Simon–Makuch)"
    data = os_start_stop(table)
    if data.empty:
        return plot_not_estimable("no patient with an OS time above 0 days", title=title)
    return plot_simon_makuch(tv.SimonMakuch().fit_start_stop(data), {0: "no HSCT", 1: "HSCT"}, title=title)


def simon_makuch_figure(table: pd.DataFrame, figures_dir: str = ""):
    """:func:`plot_simon_makuch`, captioned and published."""
    from ..plots import publish

    return publish(plot_simon_makuch(table), "transplant_simon_makuch",
                   f"Simon–Makuch overall survival by HSCT as it happens, N = {len(table)}: patients count in the "
                   "no-HSCT curve until their transplant day and in the HSCT curve after it.",
                   "Two survival step curves, HSCT in vermillion and no HSCT in blue, months since infusion on the x "
                   "axis (ticked every 12), overall survival probability on the y axis.", figures_dir)


def plot_landmark(table: pd.DataFrame, params: dict[str, Any]):
    """KM of OS from the landmark day by HSCT before it."""
    from ..plots import GROUP_COLOURS, plot_survival

    data, _ = landmark_os(table, params["landmark_day"])
    fits = {("HSCT before landmark" if g else "no HSCT before landmark"):
            KaplanMeier(ci=params["km_ci"]).fit(months(d["os_days"]), d["os_event"]) for g, d in data.groupby("hsct_by_landmark")}
    colours = {"HSCT before landmark": GROUP_COLOURS["HSCT"], "no HSCT before landmark": GROUP_COLOURS["no HSCT"]}
    return plot_survival(fits, title=f"OS from the day-{params['landmark_day']:g} landmark", colours=colours,
                         ylabel="Overall survival probability", xlabel="Months since the landmark",
                         empty_reason=f"no patient alive and followed beyond day {params['landmark_day']:g}")


def landmark_figure(table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """:func:`plot_landmark`, captioned and published."""
    from ..plots import publish

    day = params["landmark_day"]
    data, _ = landmark_os(table, day)
    return publish(plot_landmark(table, params), "transplant_landmark",
                   f"Landmark analysis: Kaplan–Meier overall survival from day {day:g} among the {len(data)} patients "
                   f"alive and followed then, by HSCT on or before day {day:g}; numbers at risk under the axis.",
                   "Two Kaplan–Meier step curves, HSCT before the landmark in vermillion and no HSCT in blue, months "
                   "since the landmark on the x axis (ticked every 12), overall survival probability on the y axis.",
                   figures_dir)
