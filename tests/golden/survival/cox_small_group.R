# Golden for a Cox model that lifelines' stopping rule fails on and R fits: a group of 2, both dead.
# Run from the repo root: Rscript tests/golden/survival/cox_small_group.R
library(survival)
d <- read.csv("tests/golden/survival/cox_small_group.csv")
fit <- coxph(Surv(time, event) ~ x, data = d, ties = "efron", control = coxph.control(eps = 1e-12, iter.max = 100))
s <- summary(fit)$coefficients
cat(sprintf('{"coef": %.15g, "se": %.15g, "p": %.15g, "loglik": %.15g, "R": "%s", "survival": "%s"}\n',
            s[1, "coef"], s[1, "se(coef)"], s[1, "Pr(>|z|)"], fit$loglik[2], R.version.string, packageVersion("survival")),
    file = "tests/golden/survival/cox_small_group.json")
