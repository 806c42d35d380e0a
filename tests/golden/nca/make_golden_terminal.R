# Golden values for the AUClast, partial-AUC and lambda_z tests of tests/test_nca.py:
# golden_terminal_pk_synth.csv and golden_terminal_pk_tails.csv (both AUC methods).
# Run from this folder:  Rscript make_golden_terminal.R   (base R only)
#
# An independent, loop-based R reading of docs/NCA.md ("AUClast and partial AUCs",
# "Terminal phase"), one patient at a time, with lm() for every candidate terminal fit;
# no code shared with cartlib. Inputs: pk_synth.csv (written by make_golden.R) and a second
# seeded cohort written here, pk_tails.csv, with long biexponential tails, BLQ
# inside the tail, tied maxima, same-day duplicates and late re-expansions (rising tails).

lloq <- 100

daily <- function(day, raw) {
  num <- suppressWarnings(as.numeric(raw))
  v <- ifelse(!is.na(num) & num >= lloq, num, 0)          # BLQ text or below the LLOQ -> 0
  keep <- day > 0                                          # post-infusion samples only
  d <- day[keep]; v <- v[keep]
  u <- sort(unique(d))
  list(t = u, y = vapply(u, function(x) mean(v[d == x]), 0))   # same-day samples averaged
}

# Area over [a, b] of the profile that starts at (0, 0). After the last sample the profile
# stays at 0 if that sample is BLQ; if it is quantifiable and before b, the area is NA.
auc_interval <- function(t, y, a, b, method) {
  if (!length(t)) return(NA)
  if (max(t) < b && y[length(y)] > 0) return(NA)
  t <- c(0, t); y <- c(0, y)
  auc <- 0
  for (i in seq_len(length(t) - 1)) {
    t0 <- t[i]; t1 <- t[i + 1]; c0 <- y[i]; c1 <- y[i + 1]
    lo <- max(t0, a); hi <- min(t1, b)
    if (hi <= lo) next
    logd <- method == "linear-up-log-down" && c0 > 0 && c1 > 0 && c1 < c0
    at <- function(x) if (logd) c0 * (c1 / c0)^((x - t0) / (t1 - t0)) else c0 + (c1 - c0) * (x - t0) / (t1 - t0)
    ca <- at(lo); cb <- at(hi)
    auc <- auc + if (logd && ca != cb) (hi - lo) * (ca - cb) / log(ca / cb) else (hi - lo) * (ca + cb) / 2
  }
  auc
}

auclast <- function(t, y, method) {
  if (!length(t)) return(NA)
  if (!any(y > 0)) return(0)
  auc_interval(t, y, 0, max(t[y > 0]), method)
}

# PKNCA's default selection: last k >= 3 positive points after Tmax (first maximum), the
# best adjusted R^2 over all candidates, keep lambda_z > 0 within 1e-4 of it, most points.
lambda_z <- function(t, y, min_points = 3, factor = 1e-4) {
  out <- c(lambda_z = NA, half_life = NA, lambda_z_n_points = NA, r_squared = NA,
           adj_r_squared = NA, lambda_z_time_first = NA, clast_pred = NA)
  if (!any(y > 0)) return(out)
  tmax <- t[which(y == max(y))[1]]
  keep <- t > tmax & y > 0
  tt <- t[keep]; ly <- log(y[keep]); m <- length(tt)
  if (m < min_points) return(out)
  fits <- do.call(rbind, lapply(min_points:m, function(k) {
    x <- tt[(m - k + 1):m]; z <- ly[(m - k + 1):m]
    f <- lm(z ~ x); s <- suppressWarnings(summary(f))
    data.frame(k = k, lz = -unname(coef(f)[2]), r2 = s$r.squared, adj = s$adj.r.squared,
               first = x[1], cp = exp(unname(coef(f)[1] + coef(f)[2] * tt[m])))
  }))
  best <- max(fits$adj, na.rm = TRUE)
  ok <- fits$lz > 0 & fits$adj > best - factor
  ok[is.na(ok)] <- FALSE
  if (!any(ok)) return(out)
  f <- fits[ok, ]; f <- f[which.max(f$k), ]
  c(lambda_z = f$lz, half_life = log(2) / f$lz, lambda_z_n_points = f$k, r_squared = f$r2,
    adj_r_squared = f$adj, lambda_z_time_first = f$first, clast_pred = f$cp)
}

# The second cohort: rise to a peak, then a fast and a slow exponential, lognormal noise.
set.seed(16)
schedule <- c(-3, 4, 7, 10, 11, 14, 21, 28, 35, 42, 56, 84, 120, 180, 270, 365)
pk <- do.call(rbind, lapply(sprintf("T%02d", 1:36), function(id) {
  days <- sort(c(sample(schedule[schedule <= 14], 4), sample(schedule[schedule > 14], sample(4:10, 1))))
  if (runif(1) < .25) days <- sort(c(days, sample(days[days > 0], 1)))   # a same-day duplicate
  peak <- 10^runif(1, 3, 6); tp <- sample(c(7, 10, 14), 1)
  a <- runif(1, .08, .4); b <- runif(1, .003, .05); f <- 10^runif(1, -3, -1)
  s <- pmax(days - tp, 0)
  conc <- ifelse(days <= 0, 0, ifelse(days < tp, peak * exp(-(tp - days) * .6),
                                      peak * ((1 - f) * exp(-a * s) + f * exp(-b * s))))
  if (runif(1) < .2) conc <- conc * ifelse(days > 60, exp((days - 60) / 40), 1)   # re-expansion
  conc <- signif(conc * exp(rnorm(length(days), 0, .25)), 4)
  raw <- as.character(conc)
  raw[conc < lloq & runif(length(conc)) < .6] <- "BLQ"
  data.frame(USUBJID = id, DAY = days, CONC = raw)
}))
hand <- data.frame(
  USUBJID = c(rep("H1", 5), rep("H2", 4), rep("H3", 5), rep("H4", 8)),
  DAY = c(7, 14, 21, 28, 35,   7, 14, 21, 28,   7, 14, 21, 28, 35,   4, 7, 14, 21, 28, 35, 42, 56),
  CONC = c("1000", "800", "500", "600", "900",            # rising tail: lambda_z not estimable
           "5000", "5000", "2500", "1250",                # tied maximum: day 14 enters the fit
           "8000", "4000", "BLQ", "1000", "500",          # BLQ inside the tail is left out
           "100", "6400", "3200", "1600", "800", "400", "200", "BLQ"))   # exact: all 5 points
pk <- rbind(pk, hand)
write.csv(pk, "pk_tails.csv", row.names = FALSE)

intervals <- list(c(0, 28), c(7, 60), c(0, 12.5), c(30, 365))
for (file in c("pk_synth.csv", "pk_tails.csv")) {
  p <- read.csv(file, colClasses = c("character", "numeric", "character"))
  ids <- unique(p$USUBJID)
  rows <- lapply(ids, function(id) {
    g <- p[p$USUBJID == id, ]; d <- daily(g$DAY, g$CONC)
    aucs <- unlist(lapply(c("linear-up-log-down", "linear"), function(m) {
      v <- c(auclast(d$t, d$y, m),
             vapply(intervals, function(iv) auc_interval(d$t, d$y, iv[1], iv[2], m), 0))
      names(v) <- paste0(c("auclast", "auc_0_28", "auc_7_60", "auc_0_12p5", "auc_30_365"),
                         if (m == "linear") "_linear" else "_logdown")
      v
    }))
    data.frame(USUBJID = id, t(lambda_z(d$t, d$y)), t(aucs), check.names = FALSE)
  })
  out <- do.call(rbind, rows)
  write.csv(out, paste0("golden_terminal_", file), row.names = FALSE, na = "")
}
