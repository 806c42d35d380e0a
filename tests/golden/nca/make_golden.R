# Golden values for tests/test_nca.py, tests/test_pk_summary.py and tests/test_bca.py.
# Run from this folder:  Rscript make_golden.R   (needs base R and the survival package)
#
# 1. theoph.csv: R's datasets::Theoph (12 subjects, oral theophylline). The reference NCA
#    values (Phoenix WinNonlin AUClast, Cmax, Tmax, Tlast, both AUC methods) are in
#    winnonlin_theoph.csv, transcribed from asancpt/NonCompart-tests (see README.md).
d <- datasets::Theoph
out <- data.frame(Subject = as.integer(as.character(d$Subject)), Time = d$Time, conc = d$conc)
out <- out[order(out$Subject, out$Time), ]
write.csv(out, "theoph.csv", row.names = FALSE)

# 2. A synthetic analysis table (seeded) with the columns Table 3, the correlations, the
#    BCA Kaplan-Meier and the IL-6 association read; then R's answers on it.
set.seed(20251672)
n <- 40
a <- data.frame(USUBJID = sprintf("S%02d", 1:n))
a$AGE <- round(runif(n, 1, 20), 1)
a$AGE[1:2] <- c(10, 10.1)                                 # on both sides of the cut
a$SEX <- sample(c("M", "F"), n, replace = TRUE)
a$PRIOR_HSCT <- sample(c("Y", "N"), n, replace = TRUE, prob = c(.2, .8))
a$PRIOR_CART <- sample(c("Y", "N"), n, replace = TRUE, prob = c(.15, .85))
a$MRD_PRELD <- signif(10^runif(n, -5.5, -1), 2); a$MRD_PRELD[3:5] <- c(0, 1e-4, 1e-3)
a$MRD_POSTLD <- signif(10^runif(n, -5.5, -1.5), 2); a$MRD_POSTLD[6:7] <- c(0, 1e-2)
a$MRD_PRELD[8] <- NA                                      # a missing characteristic
a$DOSE <- round(runif(n, 1, 6), 2)
a$crs_grade <- sample(0:4, n, replace = TRUE, prob = c(.2, .35, .25, .12, .08))
a$icans <- rbinom(n, 1, .2)
a$neutropenia_g4 <- rbinom(n, 1, .5)
a$tocilizumab <- rbinom(n, 1, .3)
a$corticosteroid <- rbinom(n, 1, .2)
a$d28_mrd_neg <- rbinom(n, 1, .8)
a$cmax <- round(exp(rnorm(n, log(3e4) + 0.8 * a$d28_mrd_neg, 1.5)))
a$auc28 <- round(a$cmax * exp(rnorm(n, log(8), .5)))
a$tlast <- sample(c(14, 21, 28, 56, 84, 90, 180, 365), n, replace = TRUE)   # many ties
a$cmax[9] <- NA; a$tlast[9] <- NA; a$auc28[9] <- 0        # no quantifiable sample
a$auc28[10] <- NA                                         # profile ended before day 28
a$tmax <- sample(c(4, 7, 10, 11, 14, 21), n, replace = TRUE); a$tmax[9] <- NA
a$bca <- rbinom(n, 1, .9)
a$bca_duration_days <- ifelse(a$bca == 1, sample(c(7, 14, 30, 45, 59, 90, 120, 200), n, TRUE), 0)
a$bca_ongoing <- ifelse(a$bca == 1, rbinom(n, 1, .25), 0)
a$il6_peak <- round(exp(rnorm(n, log(20), 1.2)), 1)
a$il6_peak[11:13] <- c(NA, 7, 7.1)                        # missing, at the ULN, just above
a$il6_peak_day <- ifelse(is.na(a$il6_peak), NA, sample(1:22, n, TRUE))
a$crs_ge_3 <- as.integer(a$crs_grade >= 3)
write.csv(a, "analysis_synth.csv", row.names = FALSE, na = "")

# Table 3 (wilcox.test exact=FALSE: normal approximation, tie and continuity correction)
dose_cut <- median(a$DOSE)
splits <- list(
  list("age", a$AGE <= 10, c("le_10", "gt_10"), c(TRUE, FALSE)),
  list("sex", a$SEX == "M", c("male", "female"), c(TRUE, FALSE)),
  list("prior_hsct", a$PRIOR_HSCT == "Y", c("yes", "no"), c(TRUE, FALSE)),
  list("prior_cart", a$PRIOR_CART == "Y", c("yes", "no"), c(TRUE, FALSE)))
for (w in c("preld", "postld")) for (cut in c(1e-4, 1e-3, 1e-2)) {
  v <- if (w == "preld") a$MRD_PRELD else a$MRD_POSTLD
  splits[[length(splits) + 1]] <- list(sprintf("%s_mrd_%s", w, sub("e-0", "e-", format(cut, scientific = TRUE))),
                                       v < cut, c("lt", "ge"), c(TRUE, FALSE))
}
splits <- c(splits, list(
  list("dose", a$DOSE < dose_cut, c("ge", "lt"), c(FALSE, TRUE)),
  list("crs", a$crs_grade <= 2, c("0-2", "ge_3"), c(TRUE, FALSE)),
  list("icans", a$icans == 1, c("no", "yes"), c(FALSE, TRUE)),
  list("neutropenia_g4", a$neutropenia_g4 == 1, c("yes", "no"), c(TRUE, FALSE)),
  list("tocilizumab", a$tocilizumab == 1, c("yes", "no"), c(TRUE, FALSE)),
  list("corticosteroid", a$corticosteroid == 1, c("yes", "no"), c(TRUE, FALSE)),
  list("d28_mrd_neg", a$d28_mrd_neg == 1, c("yes", "no"), c(TRUE, FALSE))))
rows <- list()
for (s in splits) {
  m <- s[[2]]
  p <- sapply(c("cmax", "auc28", "tlast"), function(v)
    wilcox.test(a[[v]][which(m)], a[[v]][which(!m)], exact = FALSE, correct = TRUE)$p.value)
  for (k in 1:2) {
    g <- a[which(m == s[[4]][k]), ]
    rows[[length(rows) + 1]] <- data.frame(row = s[[1]], level = s[[3]][k], n = nrow(g),
      cmax_median = median(g$cmax, na.rm = TRUE), auc28_median = median(g$auc28, na.rm = TRUE),
      tlast_median = median(g$tlast, na.rm = TRUE),
      cmax_p = p[["cmax"]], auc28_p = p[["auc28"]], tlast_p = p[["tlast"]])
  }
}
write.csv(do.call(rbind, rows), "golden_table3.csv", row.names = FALSE)

# Spearman correlations (cor.test exact=FALSE: t approximation), pairwise complete
corr <- function(name, x, y) {
  ok <- complete.cases(x, y)
  r <- suppressWarnings(cor.test(x[ok], y[ok], method = "spearman", exact = FALSE))
  data.frame(name = name, r = unname(r$estimate), p = r$p.value, n = sum(ok))
}
write.csv(rbind(corr("kin_cmax", a$cmax, a$tlast), corr("kin_auc28", a$auc28, a$tlast),
                corr("bca_tlast", a$bca_duration_days, a$tlast),
                corr("bca_cmax", a$bca_duration_days, a$cmax),
                corr("bca_auc28", a$bca_duration_days, a$auc28)),
          "golden_correlations.csv", row.names = FALSE)

# IL-6 > 7 pg/mL (missing = not elevated) vs outcome: sample OR, Woolf CI, Fisher p
elev <- !is.na(a$il6_peak) & a$il6_peak > 7
il6 <- do.call(rbind, lapply(c("crs_ge_3", "icans"), function(o) {
  y <- a[[o]] == 1
  t <- matrix(c(sum(elev & y), sum(!elev & y), sum(elev & !y), sum(!elev & !y)), 2)
  or <- t[1, 1] * t[2, 2] / (t[1, 2] * t[2, 1]); se <- sqrt(sum(1 / t))
  data.frame(outcome = o, a = t[1, 1], b = t[1, 2], c = t[2, 1], d = t[2, 2], or = or,
             or_lo = or * exp(-qnorm(.975) * se), or_hi = or * exp(qnorm(.975) * se),
             p = fisher.test(t)$p.value)
}))
write.csv(il6, "golden_il6.csv", row.names = FALSE)

# Kaplan-Meier of the loss of BCA among patients with onset (plain CI, Greenwood)
library(survival)
on <- a[a$bca == 1, ]
fit <- survfit(Surv(bca_duration_days, 1 - bca_ongoing) ~ 1, data = on, conf.type = "plain")
write.csv(data.frame(time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
                     survival = fit$surv, ci_lower = fit$lower, ci_upper = fit$upper),
          "golden_bca_km.csv", row.names = FALSE)

# Scalars: KM median; geometric mean and CV% of Cmax and AUC over positive values
geo <- function(x) { l <- log(x[!is.na(x) & x > 0]); c(exp(mean(l)), sqrt(exp(sd(l)^2) - 1) * 100, length(l)) }
gc <- geo(a$cmax); ga <- geo(a$auc28)
write.csv(data.frame(name = c("km_median", "cmax_geomean", "cmax_geocv_pct", "cmax_n_geo",
                              "auc28_geomean", "auc28_geocv_pct", "auc28_n_geo",
                              "cmax_median", "tmax_median", "tlast_median", "auc28_median",
                              "dose_cut"),
                     value = c(unname(summary(fit)$table["median"]), gc, ga,
                               median(a$cmax, na.rm = TRUE), median(a$tmax, na.rm = TRUE),
                               median(a$tlast, na.rm = TRUE), median(a$auc28, na.rm = TRUE), dose_cut)),
          "golden_scalars.csv", row.names = FALSE)

# 3. An independent, loop-based R reading of docs/NCA.md (one patient at a time, no shared
#    code with cartlib) on a seeded cohort with BLQ text, numbers below the LLOQ, same-day
#    duplicates, pre-infusion samples and profiles ending before day 28.
nca_one <- function(day, raw, lloq, method, end) {
  num <- suppressWarnings(as.numeric(raw))
  v <- ifelse(!is.na(num) & num >= lloq, num, 0)
  pre <- day <= 0
  base <- NA
  if (any(pre)) { last <- max(day[pre]); base <- mean(v[pre & day == last]) }
  d <- day[!pre]; v <- v[!pre]
  res <- c(cmax = NA, tmax = NA, clast = NA, tlast = NA, auc28 = NA, baseline_conc = base,
           n_samples = length(d), n_blq = sum(is.na(num[!pre]) | num[!pre] < lloq))
  if (!length(d)) return(res)
  u <- sort(unique(d)); cc <- sapply(u, function(x) mean(v[d == x]))
  if (any(cc > 0)) {
    res["cmax"] <- max(cc); res["tmax"] <- u[which(cc == max(cc))[1]]
    res["tlast"] <- max(u[cc > 0]); res["clast"] <- cc[u == res["tlast"]]
  }
  if (max(u) >= end) {
    t <- c(0, u); y <- c(0, cc); auc <- 0
    for (i in seq_len(length(t) - 1)) {
      t0 <- t[i]; t1 <- t[i + 1]; c0 <- y[i]; c1 <- y[i + 1]
      if (t0 >= end) break
      logd <- method == "linear-up-log-down" && c0 > 0 && c1 > 0 && c1 < c0
      if (t1 > end) {
        f <- (end - t0) / (t1 - t0)
        c1 <- if (logd) c0 * exp(log(c1 / c0) * f) else c0 + (c1 - c0) * f
        t1 <- end
      }
      auc <- auc + if (logd) (t1 - t0) * (c0 - c1) / log(c0 / c1) else (t1 - t0) * (c0 + c1) / 2
    }
    res["auc28"] <- auc
  }
  res
}
set.seed(4)
schedule <- c(-7, -1, 0, 1, 4, 7, 10, 11, 14, 21, 28, 35, 56, 84, 180)
pk <- do.call(rbind, lapply(sprintf("K%02d", 1:30), function(id) {
  days <- sort(sample(schedule, sample(3:12, 1)))
  days <- c(days, if (runif(1) < .3) sample(days, 1))               # a same-day duplicate
  peak <- 10^runif(1, 1.5, 6); tp <- sample(c(4, 7, 10, 14), 1)
  conc <- ifelse(days <= 0, peak / 50, peak * exp(-abs(days - tp) / runif(1, 3, 30)))
  conc <- signif(conc * exp(rnorm(length(days), 0, .3)), 4)
  raw <- as.character(conc)
  raw[conc < 100 & runif(length(conc)) < .6] <- "BLQ"                # text BLQ or a low number
  data.frame(USUBJID = id, DAY = days, CONC = raw)
}))
write.csv(pk, "pk_synth.csv", row.names = FALSE)
for (m in c("linear-up-log-down", "linear")) for (e in c(28, 12.5)) {
  g <- do.call(rbind, lapply(split(pk, factor(pk$USUBJID, levels = unique(pk$USUBJID))),
    function(p) nca_one(p$DAY, p$CONC, 100, m, e)))
  g <- data.frame(USUBJID = rownames(g), g)
  write.csv(g, sprintf("golden_nca_%s_%g.csv", m, e), row.names = FALSE, na = "")
}
