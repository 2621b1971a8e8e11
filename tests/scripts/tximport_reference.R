#!/usr/bin/env Rscript
# Reference outputs of Bioconductor tximport for genemill's tests (tests/numerics/test_tximport.py,
# tests/test_rnaseq_api.py). Run from the repository root:
#
#   Rscript tests/scripts/tximport_reference.R
#
# Inputs (real data, see each folder's PROVENANCE.md):
#   data/rnaseq-refinebio-SRP095529      6 zebrafish Salmon quant.sf.gz + refine.bio genes_to_transcripts
#   data/rnaseq-pytximport-mouse-subset  3 mouse Salmon quant.sf with GENCODE '|'-joined names
# Generated inputs (written here, labelled GENERATED: the mouse Salmon values relabelled into the
# kallisto abundance.tsv and RSEM isoforms.results layouts, to check genemill's type = "kallisto" /
# "rsem" paths; they are NOT real kallisto or RSEM output).
#
# Outputs: tests/data/reference/tximport/<set>/{abundance,length,counts_<cfa>}.tsv.gz, one row per
# gene (code-point order, LC_COLLATE = C), one column per sample, every number printed with the
# fewest significant digits (15, 16 or 17) that read back as the same double -- full double
# precision, but ~2x smaller than always printing 17 digits (the fixtures must stay < 5 MB).

Sys.setenv(TZ = "UTC")                 # readr asks timedatectl otherwise
invisible(Sys.setlocale("LC_COLLATE", "C"))
suppressPackageStartupMessages(library(tximport))

out_root <- file.path("tests", "data", "reference", "tximport")
stopifnot(dir.exists("data"), dir.exists(out_root))
modes <- c("no", "scaledTPM", "lengthScaledTPM")

format_exact <- function(x) {
  s <- sprintf("%.15g", x)
  for (digits in 16:17) {
    inexact <- which(as.numeric(s) != x)
    s[inexact] <- sprintf(paste0("%.", digits, "g"), x[inexact])
  }
  stopifnot(identical(as.numeric(s), as.vector(x)))
  s
}

write_table <- function(mat, path, key = "gene_id") {
  body <- matrix(format_exact(mat), nrow = nrow(mat))
  lines <- c(paste(c(key, colnames(mat)), collapse = "\t"),
             apply(cbind(rownames(mat), body), 1, paste, collapse = "\t"))
  con <- if (grepl("\\.gz$", path)) gzfile(path, "w", compression = 9) else file(path, "w")
  writeLines(lines, con)
  close(con)
}

# Counts from abundance are R's  t(t(new) * (colSums(counts) / colSums(new)))  with new = abundance
# (scaledTPM) or abundance * rowMeans(length) (lengthScaledTPM): one IEEE multiplication per cell.
# With factored = TRUE (the 32k-gene zebrafish set, to keep the fixtures < 5 MB) the script stores
# the per-sample factors and rowMeans(length) instead of the full tables, after checking with
# identical() that they rebuild R's matrix bit for bit; the tests rebuild it the same way.
factored_ok <- function(txi, no, cfa) {
  new <- if (cfa == "scaledTPM") txi$abundance else txi$abundance * rowMeans(txi$length)
  factor <- colSums(no$counts) / colSums(new)
  list(ok = identical(txi$counts, t(t(new) * factor)), factor = factor)
}

run_set <- function(name, files, tx2gene, type, factored = FALSE) {
  dir <- file.path(out_root, name)
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  first <- NULL
  factors <- list()
  for (cfa in modes) {
    txi <- suppressMessages(tximport(files, type = type, tx2gene = tx2gene,
                                     countsFromAbundance = cfa, dropInfReps = TRUE))
    stopifnot(txi$countsFromAbundance == cfa)
    if (is.null(first)) {
      first <- txi
      write_table(txi$abundance, file.path(dir, "abundance.tsv.gz"))
      write_table(txi$length, file.path(dir, "length.tsv.gz"))
    } else {
      stopifnot(identical(first$abundance, txi$abundance), identical(first$length, txi$length))
    }
    check <- if (factored && cfa != "no") factored_ok(txi, first, cfa) else list(ok = FALSE)
    if (check$ok) {
      factors[[cfa]] <- check$factor
    } else {
      write_table(txi$counts, file.path(dir, paste0("counts_", cfa, ".tsv.gz")))
    }
  }
  if (length(factors) > 0) {
    write_table(do.call(cbind, factors), file.path(dir, "scale_factors.tsv"), "sample")
    mean_length <- matrix(rowMeans(first$length), dimnames = list(rownames(first$length), "mean_length"))
    write_table(mean_length, file.path(dir, "mean_length.tsv.gz"))
  }
  zero <- first$abundance == 0
  cat(sprintf("%-34s %6d genes x %d samples; TPM 0 in all samples: %4d genes, in some: %4d\n",
              name, nrow(first$counts), ncol(first$counts),
              sum(rowSums(zero) == ncol(zero)), sum(rowSums(zero) > 0 & rowSums(zero) < ncol(zero))))
}

# --- zebrafish, refine.bio: genes_to_transcripts is gene<TAB>transcript without header -------------
zf <- "data/rnaseq-refinebio-SRP095529"
zf_samples <- sprintf("SRR51256%d", 21:26)
zf_files <- setNames(file.path(zf, paste0(zf_samples, ".quant.sf.gz")), zf_samples)
g2t <- read.delim(gzfile(file.path(zf, "genes_to_transcripts.txt.gz")), header = FALSE,
                  colClasses = "character")
run_set("zebrafish-SRP095529", zf_files, data.frame(tx = g2t[[2]], gene = g2t[[1]]), "salmon", factored = TRUE)

# --- mouse, pytximport subset: tx2gene from the GENCODE names (transcript = full name) -------------
ms <- "data/rnaseq-pytximport-mouse-subset"
ms_samples <- sprintf("Sample_%d", 1:3)
ms_files <- setNames(file.path(ms, paste0(ms_samples, ".sf")), ms_samples)
ms_names <- read.delim(ms_files[1], colClasses = c("character", rep("NULL", 4)))$Name
ms_tx2gene <- data.frame(tx = ms_names, gene = vapply(strsplit(ms_names, "|", fixed = TRUE), `[`, "", 2))
run_set("mouse-gencode", ms_files, ms_tx2gene, "salmon")

# Same, tx2gene without its first 50 rows: tximport drops those transcripts (genemill: missing = "drop").
run_set("mouse-gencode-drop50", ms_files, ms_tx2gene[-(1:50), ], "salmon")

# --- GENERATED kallisto / RSEM layouts of the mouse values ----------------------------------------
gen <- file.path(out_root, "generated-inputs")
write_tsv_gz <- function(frame, path) {
  con <- gzfile(path, "w", compression = 9)
  write.table(frame, con, sep = "\t", quote = FALSE, row.names = FALSE)
  close(con)
}
dir.create(gen, showWarnings = FALSE)
kal_files <- rsem_files <- character(0)
for (s in ms_samples) {
  q <- read.delim(ms_files[[s]], colClasses = c("character", rep("numeric", 4)))
  dir.create(file.path(gen, "kallisto", s), recursive = TRUE, showWarnings = FALSE)
  kal <- data.frame(target_id = q$Name, length = q$Length, eff_length = q$EffectiveLength,
                    est_counts = q$NumReads, tpm = q$TPM)
  kal_files[s] <- file.path(gen, "kallisto", s, "abundance.tsv.gz")
  write_tsv_gz(kal, kal_files[s])
  # RSEM: gene_id from the name, effective_length 0.5 on the first ten rows to exercise
  # tximport's "length < 1 -> 1" rule, FPKM / IsoPct filled with 0 (tximport does not read them).
  eff <- q$EffectiveLength
  eff[1:10] <- 0.5
  rsem <- data.frame(transcript_id = q$Name, gene_id = ms_tx2gene$gene, length = q$Length,
                     effective_length = eff, expected_count = q$NumReads, TPM = q$TPM,
                     FPKM = 0, IsoPct = 0)
  rsem_files[s] <- file.path(gen, "rsem", paste0(s, ".isoforms.results.gz"))
  dir.create(dirname(rsem_files[s]), showWarnings = FALSE)
  write_tsv_gz(rsem, rsem_files[s])
}
run_set("mouse-gencode-kallisto-generated", kal_files, ms_tx2gene, "kallisto")
run_set("mouse-gencode-rsem-generated", rsem_files, ms_tx2gene, "rsem")

# --- versions, for README.md ----------------------------------------------------------------------
writeLines(c(R.version.string,
             paste("tximport", as.character(packageVersion("tximport"))),
             paste("readr", if (requireNamespace("readr", quietly = TRUE))
               as.character(packageVersion("readr")) else "not installed (read.delim used)"),
             paste("LC_COLLATE", Sys.getlocale("LC_COLLATE"))),
           file.path(out_root, "VERSIONS.txt"))
