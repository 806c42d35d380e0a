"""The results.json keys of ../shared/spec/RESULTS.md (v1), expanded over its covariate lists.

Kept here so that tests never depend on the spec folder being present; test_sections.py
checks this list against the spec text when the spec is there.
"""
COVARIATES = ["female", "age_gt_10", "genrisk_high", "prior_hsct", "prior_cart", "no_prior_cart",
              "preld_mrd_ge_1e-3", "crs_ge_3", "icans", "neutropenia_g4", "d28_mrd_neg", "hsct_after",
              "bca_duration_days"]
TOX_COVARIATES = ["female", "no_prior_hsct", "preld_mrd_lt_1e-3", "postld_mrd_lt_1e-3", "dose_lt_median"]
LFS_MULTI = ["bca_duration_days", "female", "d28_mrd_neg"]
OS_MULTI = ["no_prior_cart", "neutropenia_g4", "crs_ge_3", "icans", "hsct_after", "bca_duration_days"]

FIXED = """
cohort.n cohort.female_n cohort.followup_median_mo cohort.dose_median
efficacy.cr_n efficacy.mrd_cr_n efficacy.os_5y efficacy.os_5y_lo efficacy.os_5y_hi
efficacy.lfs_5y efficacy.lfs_5y_lo efficacy.lfs_5y_hi efficacy.relapse_n efficacy.cir_5y efficacy.nrm_5y
toxicity.crs_any_n toxicity.crs_ge_3_n toxicity.icans_n toxicity.neutropenia_g4_n toxicity.infection_n
toxicity.tocilizumab_n toxicity.corticosteroid_n
pk.cmax_median pk.tmax_median pk.auc28_median pk.tlast_median pk.cmax_mrdcr_mwu_p pk.cmax_tlast_r
bca.n bca.duration_median_days bca.tlast_r bca.tlast_p
transplant.hsct_after_n transplant.os_logrank_p.preld_mrd_lt_1e-4 transplant.cir_gray_p
""".split()


def spec_keys() -> list[str]:
    keys = list(FIXED)
    for endpoint in ("lfs", "os"):
        keys += [f"efficacy.{endpoint}.uni.{c}.{k}" for c in COVARIATES for k in ("hr", "p")]
    keys += [f"efficacy.lfs.multi.{c}.{k}" for c in LFS_MULTI for k in ("hr", "hr_lo", "hr_hi", "p")]
    keys += [f"efficacy.os.multi.{c}.{k}" for c in OS_MULTI for k in ("hr", "hr_lo", "hr_hi", "p")]
    keys += [f"toxicity.scrs.uni.{c}.{k}" for c in TOX_COVARIATES for k in ("or", "p")]
    return sorted(keys)
