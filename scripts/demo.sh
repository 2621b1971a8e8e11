#!/usr/bin/env bash
# The main job on the embedded default: SQLite + local files in $GENEMILL_HOME (default ./.genemill-home):
# the bundled real example experiments are imported, processed and shown, then the web site is served.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export GENEMILL_HOME="${GENEMILL_HOME:-$PWD/.genemill-home}"
GM=.venv/bin/genemill
$GM db init
echo "==> importing bundled real example experiments (see data/*/PROVENANCE.md)"
$GM import data/geo-soft/geoquery-extdata/GSE781_family.soft.gz \
           data/geo-soft/geoquery-extdata/GDS507.soft.gz \
           data/magetab-caarray/e-mexp-428_v1.0.idf
echo "==> processing GSE781 (34 submitter-processed MAS5 tables -> Ensembl genes)"
$GM process GSE781
echo "==> processing your own CEL files: two real HG-Focus arrays with their CDF (RMA)"
$GM import-cel --title "HG-Focus example arrays (Affymetrix Fusion SDK sample data)" \
    --organism "Homo sapiens" --cdf data/affy-hg-focus/HG-Focus.CDF.gz \
    data/affy-hg-focus/HG-Focus-1-121502.calvin.CEL.gz data/affy-hg-focus/HG-Focus-2-121502.calvin.CEL.gz
echo "==> RNA-seq: six real zebrafish Salmon quant.sf files (refine.bio's SRP095529 fixtures) -> tximport"
$GM import-quant --title "Zebrafish SRP095529 Salmon quantifications (refine.bio test files)" \
    --organism "Danio rerio" --tx2gene data/rnaseq-refinebio-SRP095529/genes_to_transcripts.txt.gz \
    data/rnaseq-refinebio-SRP095529/*.quant.sf.gz
$GM list
$GM show GSE781
echo "==> building a dataset of GSE781 (TSV zip in refine.bio's layout + AnnData)"
$GM dataset build --experiment GSE781 --aggregate experiment --format zip --format h5ad \
    --out "$GENEMILL_HOME/datasets/GSE781-demo.zip"
PORT="${GENEMILL_PORT:-8000}"
echo "==> the web site: open http://127.0.0.1:$PORT/ (search, experiment pages, cart, downloads; API at /v1/)"
exec $GM serve --host 127.0.0.1 --port "$PORT"
