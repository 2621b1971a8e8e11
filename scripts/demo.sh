#!/usr/bin/env bash
# The main job on the embedded default: SQLite + local files in $GENEMILL_HOME (default ./.genemill-home),
# the bundled real example experiments imported, processed, and shown.
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
$GM list
$GM show GSE781
