# Reference outputs for genemill.datasets.normalize.quantile_normalize_columns:
# preprocessCore::normalize.quantiles.use.target on a small CONSTRUCTED matrix with ties, missing
# values and a column holding a single value, for a target of another length (12) and of the
# matrix's own length (8).
#   Rscript tests/scripts/datasets_qn_reference.R tests/data/reference/datasets
suppressPackageStartupMessages(library(preprocessCore))
out <- commandArgs(TRUE)[1]
x <- cbind(
  c(5, 2, 2, 7, NA, 1, 9, 3),
  c(4, 8, 1, 6, 2, 7, 3, 5),
  c(NA, NA, 4.2, NA, NA, NA, NA, NA),
  c(2, 2, 2, 2, 5, 5, 1, 1)
)
targets <- list(
  unequal = c(3.1, 0.2, 5.5, 1.7, 9.9, 4.4, 2.8, 7.3, 6.6, 0.9, 8.8, 5.0),
  equal = c(1, 2, 3, 4, 5, 6, 7, 8) * 1.1
)
for (name in names(targets)) {
  result <- normalize.quantiles.use.target(x, targets[[name]])
  write.table(format(result, digits = 17), file.path(out, paste0("qn_use_target_", name, ".tsv")),
              sep = "\t", quote = FALSE, row.names = FALSE, col.names = FALSE)
}
writeLines(c(paste("preprocessCore", packageVersion("preprocessCore")), R.version.string),
           file.path(out, "qn_use_target_versions.txt"))
