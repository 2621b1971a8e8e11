#!/usr/bin/env Rscript
# Reference outputs for genemill's Affymetrix readers and RMA (tests/data/reference/affy/).
# Run from the repository root:  Rscript tests/scripts/affy_reference.R
# Needs Bioconductor affy, makecdfenv, preprocessCore (Debian bookworm: R 4.2.2, affy 1.76.0,
# makecdfenv 1.74.0, preprocessCore 1.60.2). Values are written with 17 significant digits.
suppressPackageStartupMessages({
  library(affy); library(makecdfenv); library(preprocessCore)
})
out <- "tests/data/reference/affy"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
write17 <- function(x, file, ...) {  # names ending in .gz are gzip-compressed
  path <- file.path(out, file)
  con <- if (grepl("[.]gz$", file)) gzfile(path, "w") else file(path, "w")
  write.table(format(x, digits = 17), con, sep = "\t", quote = FALSE, ...)
  close(con)
}

# --- CDF environments (makecdfenv) -------------------------------------------------------
env_table <- function(env) {
  ids <- sort(ls(env), method = "radix")  # C order, independent of the session locale
  do.call(rbind, lapply(ids, function(i) { m <- get(i, env); data.frame(id = i, pm = m[, 1], mm = m[, 2]) }))
}
gunzip_to <- function(src, dest) {  # makecdfenv here is built without zlib
  i <- gzfile(src, "rb"); o <- file(dest, "wb")
  repeat { b <- readBin(i, "raw", 1e7); if (!length(b)) break; writeBin(b, o) }
  close(i); close(o)
}
work <- tempfile("cdf"); dir.create(work)
gunzip_to("data/affy-hu6800/Hu6800.CDF.gz", file.path(work, "Hu6800.CDF"))
gunzip_to("data/affy-hg-focus/HG-Focus.CDF.gz", file.path(work, "HG-Focus.CDF"))
file.copy("data/affy-test3-formats/Test3.ascii.CDF", file.path(work, "Test3.CDF"))
cdfs <- list(test3 = "Test3.CDF", hu6800 = "Hu6800.CDF", hgfocus = "HG-Focus.CDF")
envs <- list()
for (name in names(cdfs)) {
  envs[[name]] <- make.cdf.env(cdfs[[name]], cdf.path = work, verbose = FALSE)
  tab <- env_table(envs[[name]])
  tmp <- tempfile(fileext = ".tsv")
  write.table(tab, tmp, sep = "\t", quote = FALSE, row.names = FALSE)
  if (name == "test3") {
    con <- gzfile(file.path(out, "test3_cdfenv.tsv.gz"), "w")
    write.table(tab, con, sep = "\t", quote = FALSE, row.names = FALSE)
    close(con)
  }
  cat(name, "\t", nrow(tab), "\t", unname(tools::md5sum(tmp)), "\n", sep = "",
      file = file.path(out, "cdfenv_md5.tsv"), append = name != "test3")
}
assign("test3cdf", envs$test3, envir = .GlobalEnv)
assign("hu6800cdf", envs$hu6800, envir = .GlobalEnv)
assign("hgfocuscdf", envs$hgfocus, envir = .GlobalEnv)

# --- RMA at full precision ---------------------------------------------------------------
rma_full <- function(files, cdfname, file) {
  ab <- ReadAffy(filenames = files, cdfname = cdfname, verbose = FALSE)
  e <- exprs(rma(ab, verbose = FALSE))
  write17(e[sort(rownames(e), method = "radix"), , drop = FALSE], file, col.names = NA)
  ab
}
hg <- rma_full(c("data/affy-hg-focus/HG-Focus-1-121502.calvin.CEL.gz",
                 "data/affy-hg-focus/HG-Focus-2-121502.calvin.CEL.gz"), "hgfocuscdf", "hgfocus_rma.tsv.gz")
rma_full("data/affy-hu6800/T1_r1.CEL.gz", "hu6800cdf", "hu6800_rma.tsv.gz")
rma_full(c("data/affy-test3-formats/Test3-1-121502.v3-crlf.CEL",
           "data/affy-test3-formats/Test3-2-121502.v3-crlf.CEL"), "test3cdf", "test3_v3_rma.tsv")

# --- background correction on a subset of HG-Focus PM probes -----------------------------
pmi <- unlist(pmindex(hg))
keep <- seq(1, length(pmi), by = 50)
bg <- rma.background.correct(pm(hg))
write17(data.frame(cell = pmi[keep] - 1, bg[keep, , drop = FALSE], check.names = FALSE),
        "hgfocus_bg_subset.tsv.gz", row.names = FALSE)

# --- quantile normalization with ties and missing values ---------------------------------
set.seed(1)
x <- matrix(round(rgamma(600, 2, 0.01)), 200, 3)  # whole numbers: many ties
x[1:5, 2] <- x[1:5, 1]
y <- x; y[c(3, 50, 77), 1] <- NA; y[10, 3] <- NA
t57 <- sort(rgamma(57, 2, 0.01))
write17(x, "quantile_x.tsv", row.names = FALSE, col.names = FALSE)
write17(y, "quantile_y.tsv", row.names = FALSE, col.names = FALSE)
write17(t57, "quantile_t57.tsv", row.names = FALSE, col.names = FALSE)
write17(normalize.quantiles(x), "quantile_x_normalized.tsv", row.names = FALSE, col.names = FALSE)
write17(normalize.quantiles(y), "quantile_y_normalized.tsv", row.names = FALSE, col.names = FALSE)
write17(normalize.quantiles.determine.target(y), "quantile_y_target.tsv", row.names = FALSE, col.names = FALSE)
write17(normalize.quantiles.determine.target(x, target.length = 57), "quantile_x_target57.tsv",
        row.names = FALSE, col.names = FALSE)
write17(normalize.quantiles.use.target(y, t57), "quantile_y_use_t57.tsv", row.names = FALSE, col.names = FALSE)

# --- median polish: stats::medpolish and preprocessCore's log2 summary agree --------------
# (preprocessCore::subColSummarizeMedianpolish without log returns plain column medians, an
#  upstream bug, so it is not used as an oracle.)
shapes <- list(c(11, 2), c(11, 9), c(16, 100), c(1, 5), c(4, 1), c(6, 6))
set.seed(2)
rows <- list(); res <- list()
for (k in seq_along(shapes)) {
  s <- shapes[[k]]
  m <- matrix(round(rnorm(s[1] * s[2], 8, 2), 3), s[1], s[2])
  mp <- medpolish(m, trace.iter = FALSE)
  pc <- subColSummarizeMedianpolishLog(2^m, rep(1, s[1]))
  stopifnot(max(abs(pc - (mp$overall + mp$col))) < 1e-12)
  rows[[k]] <- data.frame(set = k, probe = seq_len(s[1]), m)
  names(rows[[k]]) <- c("set", "probe", paste0("a", seq_len(s[2])))
  res[[k]] <- data.frame(set = k, array = seq_len(s[2]), expression = mp$overall + mp$col)
}
for (k in seq_along(rows)) {
  write17(rows[[k]], sprintf("medpolish_in_%d.tsv", k), row.names = FALSE)
}
write17(do.call(rbind, res), "medpolish_out.tsv", row.names = FALSE)
sessionInfo()
