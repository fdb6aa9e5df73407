#!/usr/bin/env bash
# What a plain install of this checkout costs a new user: download size, site-packages size,
# the ten largest installed distributions, and whether any torch / triton / nvidia package came along.
#
#   benchmarks/install_footprint.sh [CHECKOUT] [PYTHON]
#
# CHECKOUT: the project folder to install (default: this script's repository);
# PYTHON:   the interpreter that makes the venv (default: python3).
# Everything happens in a fresh temporary folder (venv and an empty pip cache, so every wheel is
# really downloaded); it is removed afterwards unless KEEP=1. The download size is the size of every
# wheel and sdist `pip download` fetched for the checkout (what the network carried).
# Exit status 1 when a torch, triton or nvidia-* distribution was installed, or site-packages
# reached LIMIT_GB (default 1.7).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKOUT="$(cd "${1:-$HERE}" && pwd)"
PYTHON="${2:-python3}"
LIMIT_GB="${LIMIT_GB:-1.7}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/supportdesk-footprint.XXXXXX")"
cleanup() { if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi; }
trap cleanup EXIT

echo "checkout:  $CHECKOUT"
echo "python:    $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$WORK/venv"
export PIP_CACHE_DIR="$WORK/pip-cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# A copy of the checkout without its local venv and build outputs, so the install sees what a clone has.
mkdir "$WORK/src"
tar -C "$CHECKOUT" --exclude=./.venv --exclude=./.git --exclude='*.egg-info' --exclude=./build \
    --exclude='__pycache__' -cf - . | tar -C "$WORK/src" -xf -

started=$(date +%s)
# Download every distribution the install needs into one folder (its size is the download), then
# install from that folder only, so nothing else is fetched.
"$WORK/venv/bin/pip" download --quiet --dest "$WORK/downloads" "$WORK/src" "setuptools>=68" wheel 2>&1 \
    | grep -v "is ignored: it is neither" || true
"$WORK/venv/bin/pip" install --quiet --no-index --find-links "$WORK/downloads" "$WORK/src" 2>&1 \
    | grep -v "is ignored: it is neither" || true
elapsed=$(( $(date +%s) - started ))
(cd "$WORK" && "$WORK/venv/bin/python" -c "import supportdesk") || { echo "install failed"; exit 1; }

# The installed package answers a real query offline (weights and config come from package data).
(cd "$WORK" && SUPPORTDESK_HOME="$WORK/home" "$WORK/venv/bin/supportdesk" ask "How do I reset my password?" \
    2>/dev/null | grep -E "^(Status|Sources):") || { echo "supportdesk ask failed in the fresh install"; exit 1; }

download_bytes=$(du -sb "$WORK/downloads" | cut -f1)
site=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site_bytes=$(du -sb "$site" | cut -f1)

"$WORK/venv/bin/python" - "$download_bytes" "$site_bytes" "$elapsed" "$LIMIT_GB" <<'PY'
import importlib.metadata as md
import os
import re
import sys

download, site, elapsed, limit_gb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sizes = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or []:
        path = dist.locate_file(f)
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    sizes[dist.metadata["Name"]] = total
gb = 1000**3  # decimal GB, the stricter reading of the limit
print(f"download size:       {download / 1024**2:,.0f} MiB ({download / gb:.2f} GB; download + install took {elapsed}s)")
print(f"site-packages size:  {site / gb:.2f} GB ({site / 1024**2:,.0f} MiB) for {len(sizes)} distributions")
print("ten largest distributions:")
for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:10]:
    print(f"  {size / 1024**2:8.1f} MiB  {name}")
heavy = sorted(n for n in sizes if re.match(r"^(torch|triton|nvidia[-_])", n, re.I))
print(f"torch/triton/nvidia: {', '.join(heavy) if heavy else 'none'}")
ok = not heavy and site < limit_gb * gb
print(f"verdict:             {'OK' if ok else 'FAILED'} (limit {limit_gb} GB, no torch/triton/nvidia)")
sys.exit(0 if ok else 1)
PY
