# Golden values for cartlib.stats.logistic, from R glm(family = binomial) + confint.default.
# Run from this folder:  Rscript make_golden.R
# Writes data_<name>.csv (the exact inputs) and one row per model term to
#   fit_all.csv   - glm with its default control (epsilon = 1e-8): R's SE comes from the IRLS
#                   weights of the last iteration's starting point, so it differs from the SE at
#                   the exact maximum by up to ~1e-4 relative on these data;
#   fit_tight.csv - the same models with glm.control(epsilon = 1e-14, maxit = 100), i.e. at the
#                   maximum itself, which is what cartlib reports (Newton to convergence).
options(digits = 17)
wr <- function(x, f) write.csv(x, f, row.names = FALSE)

fits <- list()
one <- function(name, model, d, outcome, covs) {
  f <- glm(reformulate(covs, outcome), family = binomial, data = d, control = ctl)
  s <- summary(f)$coefficients
  ci <- confint.default(f)
  data.frame(data = name, model = model, term = rownames(s), coef = s[, 1], se = s[, 2], z = s[, 3], p = s[, 4],
             or = exp(s[, 1]), or_lo = exp(ci[, 1]), or_hi = exp(ci[, 2]), n = nobs(f), converged = f$converged)
}

for (tight in c(FALSE, TRUE)) {
ctl <- if (tight) glm.control(epsilon = 1e-14, maxit = 100) else glm.control()
fits <- list()
# R's own data sets
data(mtcars); data(infert)
mt <- mtcars[, c("am", "vs", "wt", "hp", "mpg", "qsec")]
inf <- infert[, c("case", "spontaneous", "induced", "age", "parity")]
wr(mt, "data_mtcars.csv"); wr(inf, "data_infert.csv")
fits[[1]] <- one("mtcars", "am~wt+hp", mt, "am", c("wt", "hp"))
fits[[2]] <- one("mtcars", "vs~mpg", mt, "vs", c("mpg"))
fits[[3]] <- one("infert", "case~spontaneous+induced+age", inf, "case", c("spontaneous", "induced", "age"))

# CAR-T shaped cohort: 50 patients, grade>=3 CRS vs 0/1 covariates, a dose, some missing values
set.seed(1672509)
n <- 50
cart <- data.frame(female = rbinom(n, 1, 0.4), no_prior_hsct = rbinom(n, 1, 0.8),
                   preld_mrd_lt_1e3 = rbinom(n, 1, 0.5), dose = round(rlnorm(n, log(3e5), 0.5)))
cart$dose_lt_median <- as.integer(cart$dose < median(cart$dose))
lp <- -2.2 + 1.1 * cart$preld_mrd_lt_1e3 - 0.8 * cart$female + 0.9 * cart$dose_lt_median
cart$scrs <- rbinom(n, 1, plogis(lp))
cart$female[c(3, 17)] <- NA
wr(cart, "data_cart.csv")
cc <- c("female", "no_prior_hsct", "preld_mrd_lt_1e3", "dose_lt_median")
for (v in c(cc, "dose")) fits[[length(fits) + 1]] <- one("cart", paste0("scrs~", v), cart, "scrs", v)
fits[[length(fits) + 1]] <- one("cart", "scrs~multi", cart, "scrs", cc)
wr(do.call(rbind, fits), if (tight) "fit_tight.csv" else "fit_all.csv")
}
