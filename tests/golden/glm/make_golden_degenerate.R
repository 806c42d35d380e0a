# Goldens for logistic models with a covariate R cannot estimate: glm gives it an NA coefficient
# (constant, or aliased with the intercept and covariates before it) and fits the others.
# Input: data_degenerate.csv (made by ../survival/make_degenerate_data.py: a synthetic cohort
# where nobody had ICANS, icans missing for 2 patients, complement and change-of-unit columns).
# Run from the repository root:  Rscript tests/golden/glm/make_golden_degenerate.R
# Writes fit_degenerate.csv: one row per model term with coef, se, z, p (Wald), or and its
# confint.default limits; NA where R gives NA.
# Two steps, because glm's aliasing test is tied to its convergence tolerance: the QR of each
# IRLS step uses tol = min(1e-7, epsilon / 1000). With the default control (epsilon = 1e-8,
# tol = 1e-11) R finds the aliases of these data; with epsilon = 1e-12 (tol = 1e-15) it misses
# the complement of prior_hsct and the change of unit of bca_duration_days, and IRLS diverges
# (coefficients ~1e29). So the terms R leaves NA are taken from the default-control fit, and
# the others are estimated at the maximum, glm.control(epsilon = 1e-12), on the formula
# without them: R's own estimates for the non-aliased terms, which it computes on exactly
# that reduced design, to full convergence.
folder <- "tests/golden/glm"
d <- read.csv(file.path(folder, "data_degenerate.csv"))
ctl <- glm.control(epsilon = 1e-12, maxit = 100)

models <- list(
  scrs_aliased = c("female", "no_prior_hsct", "prior_hsct", "icans", "preld_mrd_lt_1e3", "dose_lt_median"),
  scrs_unit = c("female", "hsct_after", "icans", "bca_duration_days", "bca_duration_weeks", "neutropenia_g4"),
  uni_female = "female", uni_icans = "icans", uni_preld_mrd_lt_1e3 = "preld_mrd_lt_1e3",
  uni_dose_lt_median = "dose_lt_median")

fits <- list()
for (name in names(models)) {
  covs <- models[[name]]
  aliased <- is.na(coef(glm(reformulate(covs, "crs_ge_3"), family = binomial, data = d))[covs])
  f <- if (all(aliased)) {   # nothing left to estimate: R's fit is the intercept-only model
    glm(crs_ge_3 ~ 1, family = binomial, data = d[complete.cases(d[covs]), ], control = ctl)
  } else {
    glm(reformulate(covs[!aliased], "crs_ge_3"), family = binomial, data = d[complete.cases(d[covs]), ],
        control = ctl)
  }
  b <- setNames(ifelse(aliased, NA, coef(f)[covs]), covs)
  s <- summary(f)$coefficients                       # aliased terms have no row here
  se <- ifelse(is.na(b), NA, s[match(covs, rownames(s)), "Std. Error"])
  ci <- confint.default(f)[match(covs, names(coef(f))), , drop = FALSE]
  fits[[name]] <- data.frame(model = name, term = covs, coef = b, se = se, z = b / se, p = 2 * pnorm(-abs(b / se)),
                             or = exp(b), or_lo = exp(ci[, 1]), or_hi = exp(ci[, 2]), n = nobs(f),
                             converged = f$converged)
}
out <- do.call(rbind, fits)
attr(out, "row.names") <- seq_len(nrow(out))
write.csv(out, file.path(folder, "fit_degenerate.csv"), row.names = FALSE)
cat("R:", R.version.string, "\n")
