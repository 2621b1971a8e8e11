#!/usr/bin/env bash
# Install everything genemill needs on Debian/Ubuntu: system packages (once) and a Python venv.
#   scripts/setup.sh            runtime + test tools (Salmon, Chromium, PostgreSQL, R oracles)
# Safe to re-run: it skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev gcc salmon chromium fonts-liberation postgresql postgresql-client
  r-base-core r-bioc-affy r-bioc-affxparser r-bioc-makecdfenv r-bioc-tximport r-bioc-preprocesscore)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "==> installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import genemill, fastapi, anndata, pytest, playwright" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.genemill-installed ]; then
  echo "==> installing genemill and its Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[postgres,web,anndata,dask,dev]"
  touch .venv/.genemill-installed
fi
# Byte-compile genemill's own modules: an editable install leaves that to the first import, which
# never writes them where PYTHONDONTWRITEBYTECODE is set (as on CI images), so every CLI call and
# worker process would compile ~0.1-0.3 s of sources again. Stale files are simply recompiled.
.venv/bin/python -m compileall -q src/genemill >/dev/null
echo "==> setup complete"
