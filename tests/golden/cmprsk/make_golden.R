# Golden values for cartlib.stats.competing, from R cmprsk::cuminc / timepoints.
# Run from this folder:  Rscript make_golden.R
# Writes: data_<name>.csv (the exact inputs), cuminc_<name>.csv (estimate and
# variance at every time cuminc reports), timepoints_<name>.csv, gray_<name>.csv.
suppressMessages({library(cmprsk); library(survival)})
options(digits = 17)
wr <- function(x, f) write.csv(x, f, row.names = FALSE)

datasets <- list()

# 1. The cuminc help example (continuous times, no ties), times rounded to 6 dp
set.seed(2)
ss <- round(rexp(100), 6)
gg <- sample(c("a", "b", "c"), 100, replace = TRUE)
cc <- sample(0:2, 100, replace = TRUE)
strt <- sample(1:2, 100, replace = TRUE)
datasets$helpex <- data.frame(time = ss, status = cc, group = gg, strata = strt)

# 2. Same design but coarse times: many ties within and across causes and censoring
set.seed(7)
datasets$ties <- data.frame(time = ceiling(rexp(120) * 4), status = sample(0:2, 120, replace = TRUE, prob = c(.3, .4, .3)),
                            group = sample(c("g1", "g2", "g3"), 120, replace = TRUE),
                            strata = sample(c("s1", "s2"), 120, replace = TRUE))

# 3. survival::mgus2: progression (1) vs death before progression (2), by sex
m <- survival::mgus2
datasets$mgus2 <- data.frame(time = ifelse(m$pstat == 0, m$futime, m$ptime),
                             status = ifelse(m$pstat == 0, 2 * m$death, 1),
                             group = as.character(m$sex), strata = ifelse(m$age > 70, "old", "young"))

# 4. CAR-T shaped cohort: 50 patients, days, relapse (1) vs NRM (2), HSCT after yes/no
set.seed(2025)
n <- 50
hsct <- rbinom(n, 1, 0.4)
trel <- ceiling(rexp(n, ifelse(hsct == 1, 1 / 2500, 1 / 700)))
tnrm <- ceiling(rexp(n, 1 / 4000))
tcen <- sample(c(ceiling(runif(n, 200, 2800)), rep(1800, 10)), n)
time <- pmin(trel, tnrm, tcen)
status <- ifelse(time == tcen, 0, ifelse(time == trel, 1, 2))
time <- ceiling(time / 30) * 30   # monthly visits: ties
datasets$cart <- data.frame(time = time, status = status, group = ifelse(hsct == 1, "HSCT", "noHSCT"),
                            strata = ifelse(runif(n) < 0.5, "MRDlo", "MRDhi"))

# 5. A group with no cause-1 event (and a group with only censoring ties)
datasets$nocause1 <- data.frame(time = c(1, 2, 2, 3, 4, 4, 5, 6, 1, 2, 3, 3, 3, 5, 7, 8, 2, 2, 4, 6),
                                status = c(1, 1, 2, 0, 1, 2, 0, 1, 2, 2, 0, 0, 2, 0, 2, 0, 1, 0, 1, 0),
                                group = rep(c("A", "B", "C"), c(8, 8, 4)),
                                strata = rep(c(1, 2), 10))

tp_times <- list(helpex = c(0.1, 0.5, 1, 2), ties = c(1, 2, 3, 5, 10),
                 mgus2 = c(12, 60, 120, 240), cart = c(180, 365, 730, 1826.25), nocause1 = c(2, 4, 6))

for (nm in names(datasets)) {
  d <- datasets[[nm]]
  wr(d, sprintf("data_%s.csv", nm))
  out <- list(); tps <- list(); gr <- list()
  for (cause in 1:2) {
    # one-group fit (whole data) and by-group fit
    for (by in c("none", "group")) {
      fit <- if (by == "none") cuminc(d$time, d$status) else cuminc(d$time, d$status, d$group)
      tp <- timepoints(fit, tp_times[[nm]])
      for (lab in names(fit)) {
        if (lab == "Tests") next
        parts <- strsplit(lab, " ")[[1]]
        if (as.numeric(parts[length(parts)]) != cause) next
        g <- if (by == "none") "ALL" else paste(parts[-length(parts)], collapse = " ")
        f <- fit[[lab]]
        out[[length(out) + 1]] <- data.frame(by = by, group = g, cause = cause, time = f$time, est = f$est, var = f$var)
        tps[[length(tps) + 1]] <- data.frame(by = by, group = g, cause = cause, time = tp_times[[nm]],
                                             est = tp$est[lab, ], var = tp$var[lab, ])
      }
      if (by == "group") {
        tst <- fit$Tests
        gr[[length(gr) + 1]] <- data.frame(strata = "none", rho = 0, cause = cause, stat = tst[as.character(cause), "stat"],
                                           pv = tst[as.character(cause), "pv"], df = tst[as.character(cause), "df"])
        for (rho in c(0, 1)) {
          fs <- cuminc(d$time, d$status, d$group, strata = d$strata, rho = rho)
          tst <- fs$Tests
          gr[[length(gr) + 1]] <- data.frame(strata = "strata", rho = rho, cause = cause, stat = tst[as.character(cause), "stat"],
                                             pv = tst[as.character(cause), "pv"], df = tst[as.character(cause), "df"])
        }
        fr <- cuminc(d$time, d$status, d$group, rho = 1)$Tests
        gr[[length(gr) + 1]] <- data.frame(strata = "none", rho = 1, cause = cause, stat = fr[as.character(cause), "stat"],
                                           pv = fr[as.character(cause), "pv"], df = fr[as.character(cause), "df"])
      }
    }
  }
  wr(do.call(rbind, out), sprintf("cuminc_%s.csv", nm))
  wr(do.call(rbind, tps), sprintf("timepoints_%s.csv", nm))
  wr(do.call(rbind, gr), sprintf("gray_%s.csv", nm))
}
