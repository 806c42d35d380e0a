# Goldens for Cox models with a covariate R cannot estimate: coxph gives it an NA coefficient
# (constant, or aliased with a covariate before it) and fits the others; cox.zph leaves it out.
# Input: degenerate_cohort.csv (see make_degenerate_data.py: a synthetic cohort where nobody
# had ICANS, icans missing for 2 patients, complement and change-of-unit columns).
# Run from the repository root:  Rscript tests/golden/survival/make_golden_degenerate.R
# Writes degenerate_cox.csv (one row per model term; NA where R gives NA) and
# degenerate_zph.csv (cox.zph(transform = "km") rows). coxph.control(eps = 1e-12) runs the
# iteration to the maximum; R warns that its default toler.chol (eps^0.75) is not below eps,
# which only concerns the singularity test and leaves every estimate unchanged.
suppressPackageStartupMessages(library(survival))
folder <- "tests/golden/survival"
d <- read.csv(file.path(folder, "degenerate_cohort.csv"))
ctl <- suppressWarnings(coxph.control(eps = 1e-12, iter.max = 100))

models <- list(
  os_table1b = c("no_prior_cart", "neutropenia_g4", "crs_ge_3", "icans", "hsct_after", "bca_duration_days"),
  os_aliased = c("prior_cart", "no_prior_cart", "neutropenia_g4", "icans", "bca_duration_days", "bca_duration_weeks"),
  uni_female = "female", uni_icans = "icans", uni_neutropenia_g4 = "neutropenia_g4",
  uni_hsct_after = "hsct_after", uni_bca_duration_days = "bca_duration_days")

fits <- list(); zphs <- list()
for (name in names(models)) {
  covs <- models[[name]]
  f <- coxph(reformulate(covs, "Surv(time_mo, event)"), data = d, ties = "efron", control = ctl)
  b <- coef(f)[covs]
  se <- ifelse(is.na(b), NA, sqrt(diag(f$var)))
  z <- b / se
  fits[[name]] <- data.frame(model = name, term = covs, coef = b, se = se, hr = exp(b),
                             hr_lo = exp(b - qnorm(0.975) * se), hr_hi = exp(b + qnorm(0.975) * se),
                             z = z, p = 2 * pnorm(-abs(z)), n = f$n, n_events = f$nevent,
                             loglik = f$loglik[2], converged = f$iter < 100)
  if (any(!is.na(b))) {
    zp <- cox.zph(f, transform = "km")$table
    zphs[[name]] <- data.frame(model = name, term = rownames(zp), chisq = zp[, "chisq"], df = zp[, "df"],
                               p = zp[, "p"])
  }
}
# x varies only in a patient censored before the first death: it is in no risk set at an event
# time, so its information is 0 and coxph leaves it NA although it is not constant
small <- data.frame(time_mo = 1:8, event = c(0, 1, 1, 0, 1, 1, 0, 1), x = c(1, 0, 0, 0, 0, 0, 0, 0),
                    w = c(1, 0, 1, 0, 0, 1, 1, 0))
f <- coxph(Surv(time_mo, event) ~ w + x, data = small, ties = "efron", control = ctl)
b <- coef(f); se <- c(sqrt(f$var[1, 1]), NA)
fits$outside_risk_sets <- data.frame(model = "outside_risk_sets", term = c("w", "x"), coef = b, se = se,
                                     hr = exp(b), hr_lo = exp(b - qnorm(0.975) * se),
                                     hr_hi = exp(b + qnorm(0.975) * se), z = b / se, p = 2 * pnorm(-abs(b / se)),
                                     n = f$n, n_events = f$nevent, loglik = f$loglik[2], converged = f$iter < 100)
out <- do.call(rbind, fits)
attr(out, "row.names") <- seq_len(nrow(out))
write.csv(out, file.path(folder, "degenerate_cox.csv"), row.names = FALSE)
zout <- do.call(rbind, zphs)
write.csv(zout, file.path(folder, "degenerate_zph.csv"), row.names = FALSE)
cat("R:", R.version.string, " survival:", as.character(packageVersion("survival")), "\n")
