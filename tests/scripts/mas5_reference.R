#!/usr/bin/env Rscript
# Reference numbers for tests/numerics/test_mas5.py, computed with Bioconductor affy.
#
# Run from the repository root:  Rscript tests/scripts/mas5_reference.R
# Needs affy and makecdfenv (Debian: r-bioc-affy r-bioc-makecdfenv). Writes tests/data/reference/mas5/:
#   <chip>_affy_mas5_full.tsv.gz    affy::mas5() signal (defaults, linear) and affy::mas5calls()
#                                   detection p-values of the real CELs in data/, 15 significant digits
#   detection_edge_pairs.tsv        GENERATED (not measured) PM/MM pairs probing the corner cases of
#                                   affy's C DetectionPValue: ties, zero differences, saturation, ...
#   detection_edge_pvalues.tsv      affy's DetectionPValue (tau 0.015, saturation 46000) on those pairs
suppressMessages({
  library(affy)
  library(makecdfenv)
})
out <- file.path("tests", "data", "reference", "mas5")
dir.create(out, recursive = TRUE, showWarnings = FALSE)

affybatch <- function(cdf_gz, cels) {
  tmp <- tempfile()
  dir.create(tmp)
  cdf <- file.path(tmp, "chip.CDF")
  con <- gzfile(cdf_gz, "rb")
  writeBin(readBin(con, "raw", 1e9), cdf)
  close(con)
  env <- make.cdf.env("chip.CDF", cdf.path = tmp, compress = FALSE, verbose = FALSE)
  assign("genemill", env, envir = globalenv())  # getCdfInfo looks up the cdfName itself
  ab <- ReadAffy(filenames = cels, cdfname = "genemill", verbose = FALSE)
  ab@cdfName <- "genemill"
  ab
}

write_full <- function(ab, file) {
  signal <- exprs(mas5(ab, verbose = FALSE))
  p <- assayData(mas5calls(ab, verbose = FALSE))$se.exprs[rownames(signal), , drop = FALSE]
  names <- sub("\\.gz$", "", sampleNames(ab))
  table <- data.frame(probe_set_id = rownames(signal), check.names = FALSE)
  for (j in seq_along(names)) {
    table[[paste0(names[j], ":signal")]] <- formatC(signal[, j], digits = 15, format = "g")
    table[[paste0(names[j], ":detection_pvalue")]] <- formatC(p[, j], digits = 15, format = "g")
  }
  con <- gzfile(file.path(out, file), "w")
  write.table(table, con, sep = "\t", quote = FALSE, row.names = FALSE)
  close(con)
}

hgf <- file.path("data", "affy-hg-focus")
write_full(affybatch(file.path(hgf, "HG-Focus.CDF.gz"),
                     file.path(hgf, c("HG-Focus-1-121502.calvin.CEL.gz", "HG-Focus-2-121502.calvin.CEL.gz"))),
           "HG-Focus_affy_mas5_full.tsv.gz")
hu <- file.path("data", "affy-hu6800")
write_full(affybatch(file.path(hu, "Hu6800.CDF.gz"), file.path(hu, "T1_r1.CEL.gz")),
           "Hu6800_T1_r1_affy_mas5_full.tsv.gz")

# ---- generated detection corner cases -------------------------------------------------------------
set.seed(20021593)  # Liu et al. 2002, Bioinformatics 18:1593
sets <- list()
add <- function(name, pm, mm) sets[[length(sets) + 1]] <<- data.frame(probe_set_id = name, pm = pm, mm = mm)
random_pairs <- function(n) {
  pm <- round(exp(rnorm(n, 6.5, 1.2)), 1)
  list(pm = pm, mm = round(pm * exp(rnorm(n, -0.3, 0.5)), 1))
}
for (n in c(1, 2, 3, 5, 11, 16, 20, 25, 69)) for (k in 1:6) {
  r <- random_pairs(n)
  add(sprintf("random_n%02d_%d", n, k), r$pm, r$mm)
}
# (150, 250) and (256, 144) give R - tau = -0.265 and +0.265 exactly: a tie of |R - tau| with both signs.
mixed <- function(n, n_minus, n_plus) {
  r <- random_pairs(n - n_minus - n_plus)
  o <- sample(n)
  list(pm = c(r$pm, rep(150, n_minus), rep(256, n_plus))[o], mm = c(r$mm, rep(250, n_minus), rep(144, n_plus))[o])
}
for (spec in list(c(11, 2, 2), c(11, 1, 3), c(20, 3, 3), c(20, 2, 5), c(25, 4, 4), c(40, 5, 6), c(69, 7, 9))) {
  for (k in 1:3) {
    r <- mixed(spec[1], spec[2], spec[3])
    add(sprintf("mixed_ties_n%02d_%dm%dp_%d", spec[1], spec[2], spec[3], k), r$pm, r$mm)
  }
}
# Same-sign ties: repeated pairs and proportional pairs (equal R).
add("ties_repeated", c(500, 500, 500, 500, 300, 120, 80, 900, 410, 77, 500), c(200, 200, 200, 200, 310, 100, 95, 100, 400, 70, 200))
add("ties_proportional", c(100, 200, 300, 400, 50, 60, 70, 1000, 1200, 90, 95), c(50, 100, 150, 200, 55, 61, 20, 900, 1100, 91, 96))
add("ties_many", rep(c(300, 140), c(11, 9)), rep(c(100, 160), c(11, 9)))
# (203, 197) gives R - tau == 0 exactly: dropped from the test.
add("zero_some", c(203, 406, 812, 500, 90, 330, 1000, 150, 260, 610, 77), c(197, 394, 788, 100, 95, 200, 400, 170, 240, 300, 80))
# A set whose pairs are all dropped is left out: affy's C code then writes r[0] into a 0-length buffer
# and crashes R (genemill returns NaN).
add("saturated_some", c(50000, 52000, 900, 1200, 3000, 800, 47000, 700, 650, 4000, 2500), c(46500, 60000, 300, 400, 900, 500, 30000, 690, 640, 1000, 800))
add("saturated_all", c(50000, 52000, 48000, 60000, 47000), c(46500, 51000, 46001, 59000, 47500))
add("saturated_boundary", c(50000, 900, 1200, 3000, 800), c(46000, 300, 400, 900, 500))
add("present_n40", round(runif(40, 2000, 9000), 1), round(runif(40, 100, 900), 1))
add("absent_n40", round(runif(40, 100, 900), 1), round(runif(40, 2000, 9000), 1))
pairs <- do.call(rbind, sets)
pairs <- pairs[order(pairs$probe_set_id), ]  # stable: pairs keep their order inside a set
ids <- unique(pairs$probe_set_id)
p <- .C("DetectionPValue", as.double(pairs$pm), as.double(pairs$mm), as.character(pairs$probe_set_id),
        as.integer(nrow(pairs)), as.double(0.015), as.double(46000), dpval = double(length(ids)),
        length(ids), PACKAGE = "affy")$dpval
write.table(pairs, file.path(out, "detection_edge_pairs.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
write.table(data.frame(probe_set_id = ids, detection_pvalue = formatC(p, digits = 17, format = "g")),
            file.path(out, "detection_edge_pvalues.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
cat("wrote", out, "\n")
