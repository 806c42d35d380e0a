# Golden values for cartlib.stats.compare, from base R stats.
# Run from this folder:  Rscript make_golden.R
# Writes samples.csv (the exact two-sample inputs, long form), tables.csv (contingency
# tables, long form) and one CSV of results per test.
options(digits = 17)
wr <- function(x, f) write.csv(x, f, row.names = FALSE)

# ---- two-sample data: R data sets and a CAR-T-shaped cohort (ties, NA) ----
set.seed(1672509)
cmax_mrd <- round(rlnorm(31, log(8e4), 1.1), -2)
cmax_oth <- c(round(rlnorm(17, log(4e4), 1.2), -2), NA, NA)
cmax_mrd[1:4] <- cmax_oth[1:4]          # ties across groups
aq <- airquality
samples <- rbind(
  data.frame(set = "mtcars_mpg_am", arm = ifelse(mtcars$am == 1, "x", "y"), value = mtcars$mpg),
  data.frame(set = "airq_ozone_5v8", arm = ifelse(aq$Month[aq$Month %in% c(5, 8)] == 5, "x", "y"),
             value = aq$Ozone[aq$Month %in% c(5, 8)]),
  data.frame(set = "sleep", arm = ifelse(sleep$group == 1, "x", "y"), value = sleep$extra),
  data.frame(set = "cart_cmax", arm = rep(c("x", "y"), c(31, 19)), value = c(cmax_mrd, cmax_oth)),
  data.frame(set = "small_ties", arm = rep(c("x", "y"), c(4, 5)), value = c(1, 2, 2, 3, 2, 3, 3, 4, 5)))
wr(samples, "samples.csv")
res <- list()
for (s in unique(samples$set)) {
  d <- samples[samples$set == s, ]
  x <- d$value[d$arm == "x"]; y <- d$value[d$arm == "y"]
  w <- wilcox.test(x, y, exact = FALSE, correct = TRUE)
  tw <- t.test(x, y); tp <- t.test(x, y, var.equal = TRUE)
  res[[s]] <- data.frame(set = s, nx = sum(!is.na(x)), ny = sum(!is.na(y)), W = w$statistic, W_p = w$p.value,
                         welch_t = tw$statistic, welch_df = tw$parameter, welch_p = tw$p.value,
                         welch_lo = tw$conf.int[1], welch_hi = tw$conf.int[2],
                         pooled_t = tp$statistic, pooled_df = tp$parameter, pooled_p = tp$p.value,
                         pooled_lo = tp$conf.int[1], pooled_hi = tp$conf.int[2])
}
wr(do.call(rbind, res), "two_sample.csv")

# ---- correlations (pairs; NA dropped pairwise by cor.test's complete.cases) ----
pairs <- rbind(
  data.frame(set = "mtcars_mpg_wt", x = mtcars$mpg, y = mtcars$wt),
  data.frame(set = "airq_ozone_temp", x = aq$Ozone, y = aq$Temp),
  data.frame(set = "airq_ozone_solar", x = aq$Ozone, y = aq$Solar.R),
  data.frame(set = "cart_cmax_tlast", x = c(cmax_mrd[1:19], cmax_oth), y = round(runif(38, 14, 900))),
  data.frame(set = "tiny_ties", x = c(1, 2, 2, 3, 5), y = c(2, 1, 4, 4, 6)))
wr(pairs, "pairs.csv")
res <- list()
for (s in unique(pairs$set)) {
  d <- pairs[pairs$set == s, ]
  sp <- suppressWarnings(cor.test(d$x, d$y, method = "spearman", exact = FALSE))
  pe <- cor.test(d$x, d$y, method = "pearson")
  res[[s]] <- data.frame(set = s, n = sum(complete.cases(d$x, d$y)), rho = sp$estimate, S = sp$statistic, rho_p = sp$p.value,
                         r = pe$estimate, r_t = pe$statistic, r_df = pe$parameter, r_p = pe$p.value,
                         r_lo = if (is.null(pe$conf.int)) NA else pe$conf.int[1], r_hi = if (is.null(pe$conf.int)) NA else pe$conf.int[2])
}
wr(do.call(rbind, res), "correlation.csv")

# ---- contingency tables (long form: table id, row, col, count) ----
tabs <- list(
  t2_a = matrix(c(3, 1, 1, 3), 2),                    # R's TeaTasting
  t2_b = matrix(c(12, 5, 6, 27), 2),
  t2_zero = matrix(c(0, 9, 7, 4), 2),                 # OR estimate 0
  t2_cart = matrix(c(9, 22, 2, 17), 2),
  t2_big = matrix(c(120, 80, 95, 105), 2),
  t23 = matrix(c(2, 7, 5, 3, 8, 1), 2),
  t33_sym = matrix(c(3, 1, 1, 1, 3, 1, 1, 1, 3), 3),   # symmetric: equal-probability tables (tolerance rule)
  job = matrix(c(1, 2, 1, 0, 3, 3, 6, 1, 10, 10, 14, 9, 6, 7, 12, 11), 4, 4),  # fisher.test help (too large for cartlib: NaN)
  t32_cart = matrix(c(10, 6, 2, 4, 9, 8), 3),
  t34 = matrix(c(3, 5, 2, 6, 1, 4, 2, 7, 3, 1, 4, 2), 3))
long <- do.call(rbind, lapply(names(tabs), function(nm) {
  m <- tabs[[nm]]; data.frame(table = nm, row = as.vector(row(m)), col = as.vector(col(m)), count = as.vector(m))
}))
wr(long, "tables.csv")
# fisher.test finds the conditional MLE and CI with uniroot's default tolerance
# (eps^0.25, about 1e-4), so its OR is accurate only to ~1e-4. Solve the same defining
# equations (noncentral hypergeometric mean = observed; tail probabilities = alpha/2)
# to 1e-13 as well, for the 1e-6 comparison.
tight_or <- function(m, alpha = 0.05) {
  x <- m[1, 1]; mm <- sum(m[, 1]); n <- sum(m[, 2]); k <- sum(m[1, ])
  lo <- max(0, k - n); hi <- min(k, mm); support <- lo:hi
  logdc <- dhyper(support, mm, n, k, log = TRUE)
  dn <- function(ncp) { d <- logdc + log(ncp) * support; d <- exp(d - max(d)); d / sum(d) }
  mn <- function(ncp) if (ncp == 0) lo else if (ncp == Inf) hi else sum(support * dn(ncp))
  pn <- function(q, ncp, upper) { if (ncp == 0) return(as.numeric(if (upper) q <= lo else q >= lo))
    if (ncp == Inf) return(as.numeric(if (upper) q <= hi else q >= hi))
    d <- dn(ncp); if (upper) sum(d[support >= q]) else sum(d[support <= q]) }
  root <- function(f, v) {   # f monotone in the odds ratio; the root is below or above 1
    if (f(1) == v) return(1)
    if (sign(f(0) - v) != sign(f(1) - v)) uniroot(function(t) f(t) - v, c(0, 1), tol = 1e-13)$root
    else 1 / uniroot(function(t) f(1 / t) - v, c(.Machine$double.eps, 1), tol = 1e-13)$root }
  est <- if (x == lo) 0 else if (x == hi) Inf else root(mn, x)
  ci_lo <- if (x == lo) 0 else { f <- function(t) pn(x, t, TRUE); root(f, alpha / 2) }
  ci_hi <- if (x == hi) Inf else { f <- function(t) pn(x, t, FALSE); root(f, alpha / 2) }
  c(est, ci_lo, ci_hi)
}
res <- list()
for (nm in names(tabs)) {
  m <- tabs[[nm]]
  f <- fisher.test(m)
  c1 <- suppressWarnings(chisq.test(m)); c0 <- suppressWarnings(chisq.test(m, correct = FALSE))
  res[[nm]] <- data.frame(table = nm, fisher_p = f$p.value,
                          fisher_or = if (is.null(f$estimate)) NA else f$estimate,
                          fisher_lo = if (is.null(f$conf.int)) NA else f$conf.int[1],
                          fisher_hi = if (is.null(f$conf.int)) NA else f$conf.int[2],
                          tight_or = if (all(dim(m) == 2)) tight_or(m)[1] else NA,
                          tight_lo = if (all(dim(m) == 2)) tight_or(m)[2] else NA,
                          tight_hi = if (all(dim(m) == 2)) tight_or(m)[3] else NA,
                          chisq = c1$statistic, chisq_df = c1$parameter, chisq_p = c1$p.value,
                          chisq_nc = c0$statistic, chisq_nc_p = c0$p.value)
}
wr(do.call(rbind, res), "contingency.csv")

# ---- Clopper-Pearson (binom.test) ----
kn <- data.frame(k = c(49, 0, 50, 7, 37, 1), n = c(50, 50, 50, 20, 50, 3))
res <- do.call(rbind, lapply(seq_len(nrow(kn)), function(i) {
  b <- binom.test(kn$k[i], kn$n[i])
  data.frame(k = kn$k[i], n = kn$n[i], p = unname(b$estimate), lo = b$conf.int[1], hi = b$conf.int[2], p_value = b$p.value)
}))
wr(res, "binom.csv")
