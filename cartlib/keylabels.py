"""Readable labels of results.json keys, for the report's appendix and the scorecard.

A key such as ``efficacy.lfs.multi.female.hr_lo`` is read part by part (``.``-separated) and,
within a part, word by word (``_``-separated, longest known phrase first): covariates take the
labels the tables use (:data:`cartlib.sections.common.COVARIATE_LABELS`), every other word comes
from :data:`PHRASES`. The section (the first part) is left out: the report groups keys by section.
``untranslated`` lists the words no rule knows, so a test can require that every documented key
reads as words.

>>> key_label("efficacy.lfs.multi.female.hr_lo")
'LFS · multivariable Cox · Female · HR, lower 95% limit'
>>> key_label("pk.table3.preld_mrd_1e-3.lt.cmax_median")
'Table 3 · pre-LD MRD 10⁻³ · below · Cmax median'
>>> key_label("cohort.followup_median_mo")
'follow-up median, months'
"""
from __future__ import annotations

import re

from .sections.common import COVARIATE_LABELS

#: words and phrases of key parts (``_``-joined, as they appear in keys) -> their text
PHRASES: dict[str, str] = {
    # survival and response
    "os": "OS", "lfs": "LFS", "cr": "CR/CRi", "mrd_cr": "MRD-negative CR", "mrdcr": "MRD-negative CR",
    "not_mrdcr": "not MRD-negative CR", "d28_mrd_neg": "MRD-negative CR on day 28",
    "5y": "at 5 years", "rate": "rate", "cir": "cumulative incidence of relapse",
    "nrm": "non-relapse mortality", "relapse": "relapse", "death": "deaths",
    "cd19neg": "CD19−", "cd19pos": "CD19+", "uni": "univariable", "multi": "multivariable Cox",
    "zph_global_p": "proportional-hazards test p", "model1": "logistic model 1", "model2": "logistic model 2",
    # statistics
    "hr": "HR", "or": "OR", "p": "p", "r": "r", "n": "n", "lo": "lower 95% limit", "hi": "upper 95% limit",
    "median": "median", "min": "minimum", "max": "maximum", "geomean": "geometric mean",
    "geocv_pct": "geometric CV, %", "mwu": "Mann–Whitney", "logrank": "log-rank",
    "gray": "Gray's test", "mantel_byar": "Mantel–Byar", "tv_cox": "time-varying Cox",
    "reverse_km": "reverse Kaplan–Meier", "landmark": "landmark",
    # units
    "mo": "months", "days": "days", "day": "day",
    # cohort
    "female": "female", "male": "male", "sex": "sex", "age": "age", "age_le_10": "age ≤ 10 years",
    "le_10": "≤ 10 years", "gt_10": "> 10 years", "prior_hsct": "HSCT before CAR-T",
    "prior_cart": "earlier CAR-T", "genrisk_high": "high cytogenetic risk", "indication": "indication",
    "CHEMO_INTOLERANCE": "chemotherapy intolerance", "MRD_REEMERGENCE": "MRD re-emergence",
    "MRD_PERSISTENT": "persistent MRD", "dose": "dose", "dx_to_inf": "diagnosis to infusion",
    "followup": "follow-up", "preld": "pre-LD", "postld": "post-LD", "mrd": "MRD", "lt": "below",
    "ge": "at or above", "1e-2": "10⁻²", "1e-3": "10⁻³", "1e-4": "10⁻⁴", "yes": "yes", "no": "no",
    # toxicity
    "crs": "CRS", "crs_any": "any CRS", "crs_ge_3": "CRS grade ≥ 3", "0-2": "grade 0–2", "ge_3": "grade ≥ 3",
    "scrs": "severe CRS", "icans": "ICANS", "neutropenia_g4": "grade-4 neutropenia",
    "infection": "infection", "BACTERIAL": "bacterial", "CMV": "CMV", "EBV": "EBV", "FUNGAL": "fungal",
    "tocilizumab": "tocilizumab", "corticosteroid": "corticosteroid", "hlh": "HLH", "gvhd": "GVHD",
    "il6": "IL-6", "elevated": "elevated", "peak": "peak",
    # kinetics and B-cell aplasia
    "table3": "Table 3", "cmax": "Cmax", "tmax": "Tmax", "tlast": "Tlast", "auc28": "AUC0–28d",
    "expansion": "effective expansion", "auclast": "AUClast", "half_life": "terminal half-life",
    "lambda_z": "terminal slope λz", "adj_r_squared": "adjusted R² of the terminal fit", "points": "points",
    "not_estimable": "not estimable",
    # the cellular-kinetic model
    "model": "kinetic model", "er": "exposure–response", "adj": "adjusted for pre-LD MRD",
    "alpha": "α (contraction)",
    "beta": "β (persistence)", "fb": "fb (persisting fraction)", "sigma": "σ (residual SD)",
    "fold_expansion": "fold expansion", "persistence": "persistence", "contraction": "contraction",
    "doubling_time": "doubling time", "time_below_lloq": "day below the LLOQ", "converged": "converged",
    "not_converged": "not converged", "not_identifiable": "not identifiable",
    "partly_identifiable": "partly identifiable", "patients": "patients",
    "bca": "B-cell aplasia", "duration": "duration", "loss": "loss",
    "ongoing": "ongoing", "onset": "onset",
    # transplant
    "hsct": "HSCT", "no_hsct": "no HSCT", "hsct_after": "HSCT after CAR-T", "all": "all patients",
    "time_median": "median observed time",
}
#: how the last word of a part joins the rest: ``os_5y_lo`` reads "OS at 5 years, lower 95% limit"
_AFTER_COMMA = {"lo", "hi", "n", "mo", "days", "p"}
_LONGEST = max(len(k.split("_")) for k in PHRASES)


_PARTIAL_AUC = re.compile(r"\bauc_(\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)")


def _words(part: str) -> tuple[list[str], list[str]]:
    """The texts of one ``_``-separated part, longest phrases first, and the unknown words."""
    part = _PARTIAL_AUC.sub(lambda m: f"AUC{m.group(1)}–{m.group(2)}d", part)   # pk.auc_0_90_median
    words, texts, unknown, i = part.split("_"), [], [], 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            phrase = "_".join(words[i:i + size])
            if phrase in PHRASES:
                texts.append(("," if phrase in _AFTER_COMMA and texts else "") + PHRASES[phrase])
                i += size
                break
        else:
            texts.append(words[i])
            if not words[i].startswith("AUC"):
                unknown.append(words[i])
            i += 1
    return texts, unknown


def _translate(key: str) -> tuple[str, list[str]]:
    parts, out, unknown = key.split(".")[1:] or key.split("."), [], []
    for part in parts:
        if part in COVARIATE_LABELS:
            out.append(COVARIATE_LABELS[part])
            continue
        texts, missing = _words(part)
        unknown += missing
        out.append(" ".join(texts).replace(" ,", ", ") if texts != ["n"] else "patients, n")
    return " · ".join(out), unknown


def key_label(key: str) -> str:
    """A results.json key as words (its section left out); unknown words are kept as they are.

    >>> key_label("toxicity.scrs.model1.preld_mrd_lt_1e-3.or")
    'severe CRS · logistic model 1 · Pre-LD MRD < 10⁻³ · OR'
    """
    return _translate(key)[0]


def untranslated(key: str) -> list[str]:
    """The words of ``key`` that :func:`key_label` could not translate (empty when it reads fully).

    >>> untranslated("efficacy.os_5y"), untranslated("efficacy.xyz_n")
    ([], ['xyz'])
    """
    return _translate(key)[1]
