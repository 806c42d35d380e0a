# Golden values for cartlib.stats.survival / cox / timevarying, computed with R `survival`.
# Run from this folder:  Rscript make_golden.R
# Writes cart_cohort.csv (a small CAR-T-shaped cohort, generated here with a fixed seed so that
# Python reads the exact same data), cart_start_stop.csv (tmerge split at HSCT) and the JSON files.
suppressPackageStartupMessages(library(survival))
options(warn = 1)

# --- a tiny JSON writer (jsonlite is not installed); NA/NaN/Inf -> null ----------------------
num <- function(x) ifelse(is.finite(x), trimws(formatC(x, digits = 17, format = "g")), "null")
to_json <- function(x) {
  if (is.list(x)) {
    nm <- names(x)
    body <- vapply(seq_along(x), function(i) to_json(x[[i]]), "")
    if (is.null(nm)) return(paste0("[", paste(body, collapse = ","), "]"))
    return(paste0("{", paste0('"', nm, '":', body, collapse = ","), "}"))
  }
  if (is.character(x) || is.factor(x)) {
    s <- paste0('"', as.character(x), '"')
  } else if (is.logical(x)) {
    s <- ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  } else {
    s <- num(as.numeric(x))
  }
  if (length(x) == 1 && is.null(attr(x, "array"))) s else paste0("[", paste(s, collapse = ","), "]")
}
arr <- function(x) { x <- as.vector(x); attr(x, "array") <- TRUE; x }
write_json <- function(x, file) writeLines(to_json(x), file)
meta <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
             made_by = "tests/golden/survival/make_golden.R")

# --- the CAR-T-shaped cohort ---------------------------------------------------------------------
set.seed(20250916)
n <- 40
grp <- c(rep("A", 20), rep("B", 16), rep("C", 3), "D")   # C: no events, D: one patient
x1 <- rbinom(n, 1, 0.5)
x2 <- round(rexp(n, 1 / 120))                              # a bca_duration_days-like covariate
stratum <- rep(c("S1", "S2"), length.out = n)
rate <- ifelse(grp == "A", 1 / 500, 1 / 900) * exp(0.6 * x1 - 0.003 * x2)
t_event <- ceiling(rexp(n, rate))
t_cens <- sample(c(200, 365, 730, 1095, 1460, 1825), n, replace = TRUE)  # ties with event times
time <- pmin(t_event, t_cens)
event <- as.integer(t_event <= t_cens)
event[grp == "C"] <- 0L
time[grp == "C"] <- c(365, 730, 1095)
time[c(3, 4)] <- time[5]                                   # tied times: an event and a censoring
event[3] <- 1L; event[4] <- 0L; event[5] <- 1L
hsct_day <- ifelse(runif(n) < 0.35, round(runif(n, 20, 200)), NA)
hsct_day[1] <- 0                                            # HSCT at day 0: exposed from the start
hsct_day[2] <- time[2]                                      # HSCT on the last day: never exposed
cart <- data.frame(id = sprintf("P%02d", 1:n), time = time, event = event, grp = grp,
                   stratum = stratum, x1 = x1, x2 = x2, hsct_day = hsct_day,
                   noevent_grp = as.integer(grp == "C"), const = 1L)
write.csv(cart, "cart_cohort.csv", row.names = FALSE, na = "")

# --- Kaplan-Meier ---------------------------------------------------------------------------
km_one <- function(t, e, conf) {
  f <- survfit(Surv(t, e) ~ 1, conf.type = conf)
  tab <- summary(f)$table
  probe <- sort(unique(c(0, 0.5, min(t) - 1, f$time[c(1, 3, length(f$time))], median(t),
                         max(t), max(t) + 100)))
  s <- summary(f, times = probe, extend = TRUE)
  list(time = arr(f$time), n_risk = arr(f$n.risk), n_event = arr(f$n.event),
       n_censor = arr(f$n.censor), survival = arr(f$surv),
       std_err_log = arr(f$std.err),                # survfit object: SE of -log S (cum. hazard)
       std_err = arr(summary(f, censored = TRUE)$std.err),  # summary(): SE of S
       ci_lower = arr(f$lower), ci_upper = arr(f$upper),
       median = unname(tab["median"]), median_lo = unname(tab["0.95LCL"]),
       median_hi = unname(tab["0.95UCL"]),
       at = list(times = arr(probe), survival = arr(s$surv), std_err = arr(s$std.err),
                 lower = arr(s$lower), upper = arr(s$upper), n_risk = arr(s$n.risk)))
}
datasets <- list(
  lung = list(t = lung$time, e = as.integer(lung$status == 2)),
  veteran = list(t = veteran$time, e = veteran$status),
  cart = list(t = cart$time, e = cart$event),
  cart_A = list(t = cart$time[cart$grp == "A"], e = cart$event[cart$grp == "A"]),
  tiny_half = list(t = c(1, 2, 3, 4), e = c(1, 1, 1, 1)),      # S is exactly 0.5 on [2, 3)
  tiny_cens = list(t = c(2, 2, 3, 5, 5, 8), e = c(1, 0, 1, 0, 1, 0)),
  no_events = list(t = c(3, 5, 9), e = c(0, 0, 0)))
km <- list(meta = meta)
for (nm in names(datasets)) {
  d <- datasets[[nm]]
  km[[nm]] <- list(durations = arr(d$t), events = arr(d$e))
  for (conf in c("plain", "log", "log-log")) km[[nm]][[conf]] <- km_one(d$t, d$e, conf)
  rk <- summary(survfit(Surv(d$t, 1 - d$e) ~ 1))$table
  km[[nm]]$reverse_km_median <- unname(rk["median"])
  km[[nm]]$simple_median <- median(d$t)
}
write_json(km, "km.json")

# --- log-rank ---------------------------------------------------------------------------------
lr <- function(formula, data, groups, strata = NULL) {
  s <- survdiff(formula, data = data)
  expected <- if (is.matrix(s$exp)) rowSums(s$exp) else s$exp
  df <- sum(expected > 0) - 1
  list(durations = arr(data[[all.vars(formula)[1]]]), events = arr(data[[all.vars(formula)[2]]]),
       groups = arr(as.character(groups)), strata = if (is.null(strata)) NA else arr(as.character(strata)),
       levels = arr(sub(".*=", "", names(s$n))),
       statistic = s$chisq, df = df, p_value = s$pvalue,
       observed = arr(if (is.matrix(s$obs)) rowSums(s$obs) else s$obs),
       expected = arr(expected))
}
lung2 <- transform(lung, ev = as.integer(status == 2), sex = as.character(sex))
lung2 <- lung2[!is.na(lung2$ph.ecog), ]
vet <- transform(veteran, trt = as.character(trt), celltype = as.character(celltype))
cartlr <- cart
logrank <- list(meta = meta,
  lung_sex = lr(Surv(time, ev) ~ sex, lung2, lung2$sex),
  veteran_celltype = lr(Surv(time, status) ~ celltype, vet, vet$celltype),
  veteran_trt_strat = lr(Surv(time, status) ~ trt + strata(celltype), vet, vet$trt, vet$celltype),
  lung_sex_strat_ecog = lr(Surv(time, ev) ~ sex + strata(ph.ecog), lung2, lung2$sex, lung2$ph.ecog),
  cart_grp = lr(Surv(time, event) ~ grp, cartlr, cartlr$grp),
  cart_grp_strat = lr(Surv(time, event) ~ grp + strata(stratum), cartlr, cartlr$grp, cartlr$stratum))
write_json(logrank, "logrank.json")

# --- Cox (Efron) and cox.zph(transform = "km") ----------------------------------------------------
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100)
cox_one <- function(data, time, event, covs) {
  f <- as.formula(paste0("Surv(", time, ",", event, ") ~ ", paste(covs, collapse = "+")))
  m <- coxph(f, data = data, ties = "efron", control = ctl)
  s <- summary(m)$coefficients
  ci <- summary(m)$conf.int
  z <- cox.zph(m, transform = "km")
  list(durations = arr(data[[time]]), events = arr(data[[event]]),
       X = lapply(covs, function(v) arr(data[[v]])), covariates = arr(covs),
       coef = arr(s[, "coef"]), se = arr(s[, "se(coef)"]), hr = arr(s[, "exp(coef)"]),
       hr_lo = arr(ci[, "lower .95"]), hr_hi = arr(ci[, "upper .95"]), z = arr(s[, "z"]),
       p = arr(s[, "Pr(>|z|)"]), loglik = m$loglik[2], loglik0 = m$loglik[1], n = m$n,
       n_events = m$nevent,
       zph = list(rows = arr(rownames(z$table)), chisq = arr(z$table[, "chisq"]),
                  df = arr(z$table[, "df"]), p = arr(z$table[, "p"])))
}
lungc <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog", "wt.loss")])
lungc$ev <- as.integer(lungc$status == 2)
pbc1 <- pbc[1:312, ]
pbc1 <- transform(pbc1, ev = as.integer(status == 2), lbili = log(bili), lalb = log(albumin),
                  lprot = log(protime))
pbc1 <- na.omit(pbc1[, c("time", "ev", "age", "edema", "lbili", "lalb", "lprot")])
vetc <- transform(veteran, trt2 = as.integer(trt == 2))
cox <- list(meta = meta,
  lung = cox_one(lungc, "time", "ev", c("age", "sex", "ph.ecog", "wt.loss")),
  lung_uni = cox_one(lungc, "time", "ev", c("sex")),
  veteran = cox_one(vetc, "time", "status", c("trt2", "karno", "diagtime", "age", "prior")),
  pbc = cox_one(pbc1, "time", "ev", c("age", "edema", "lbili", "lalb", "lprot")),
  cart = cox_one(cart, "time", "event", c("x1", "x2")))
# univariable screen on the cohort (the notebooks' procedure)
cox$cart_screen <- list(covariates = arr(c("x1", "x2", "noevent_grp")),
  p = arr(sapply(c("x1", "x2"), function(v)
    summary(coxph(as.formula(paste("Surv(time, event) ~", v)), data = cart, control = ctl))$coefficients[, "Pr(>|z|)"])),
  hr = arr(sapply(c("x1", "x2"), function(v)
    exp(coef(coxph(as.formula(paste("Surv(time, event) ~", v)), data = cart, control = ctl))))))
# the monotone-likelihood case: R returns a huge |coef| (with a warning); cartlib must give NaN
mono <- suppressWarnings(coxph(Surv(time, event) ~ noevent_grp, data = cart, control = ctl))
cox$cart_monotone_R <- list(coef = unname(coef(mono)), se = unname(sqrt(diag(vcov(mono)))))
write_json(cox, "cox.json")

# --- time-varying HSCT ---------------------------------------------------------------------------
ss <- tmerge(cart[, c("id", "time", "event")], cart, id = id, ev = event(time, event))
ss <- tmerge(ss, cart, id = id, hsct = tdc(hsct_day))
ss$hsct[is.na(ss$hsct)] <- 0L
ss <- ss[, c("id", "tstart", "tstop", "ev", "hsct")]
names(ss) <- c("id", "start", "stop", "event", "hsct")
write.csv(ss, "cart_start_stop.csv", row.names = FALSE)
tv_one <- function(data, covs) {
  f <- as.formula(paste("Surv(start, stop, event) ~", paste(covs, collapse = "+")))
  m <- coxph(f, data = data, ties = "efron", control = ctl)
  s <- summary(m)
  sm <- survfit(Surv(start, stop, event) ~ hsct, data = data)
  ss <- summary(sm, censored = TRUE)
  list(id = arr(as.character(data$id)), start = arr(data$start), stop = arr(data$stop), event = arr(data$event),
       X = lapply(covs, function(v) arr(data[[v]])), covariates = arr(covs),
       coef = arr(s$coefficients[, "coef"]), se = arr(s$coefficients[, "se(coef)"]),
       p = arr(s$coefficients[, "Pr(>|z|)"]), loglik = m$loglik[2],
       sctest = list(statistic = unname(s$sctest["test"]), df = unname(s$sctest["df"]),
                     p_value = unname(s$sctest["pvalue"])),
       simon_makuch = list(strata = arr(as.character(ss$strata)), time = arr(ss$time),
                           n_risk = arr(ss$n.risk), n_event = arr(ss$n.event),
                           survival = arr(ss$surv)))
}
heart2 <- transform(heart, hsct = transplant)
tv <- list(meta = meta,
  heart = tv_one(heart2, c("hsct")),
  heart_multi = tv_one(heart2, c("hsct", "age", "surgery")),
  cart = tv_one(ss, c("hsct")))
# landmark at day 100 on the cohort: alive and event-free beyond the landmark, exposure = HSCT by then
L <- 100
lm <- cart[cart$time > L, ]
lm$exposed <- as.integer(!is.na(lm$hsct_day) & lm$hsct_day <= L)
lm$time <- lm$time - L
sd <- survdiff(Surv(time, event) ~ exposed, data = lm)
tv$cart_landmark <- list(day = L, ids = arr(lm$id), time = arr(lm$time), exposed = arr(lm$exposed),
                         logrank_p = pchisq(sd$chisq, 1, lower.tail = FALSE))
write_json(tv, "timevarying.json")
cat("done\n")
