#!/usr/bin/env bash
# Headless Chromium for tests/test_analyze.py (the analysis page's screenshot test).
# Debian/Ubuntu as root: apt-get, bounded in time. Exits 0 when chromium is on PATH.
set -euo pipefail
for exe in chromium chromium-browser; do
  if command -v "$exe" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: needs root and apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
timeout 300 apt-get update -qq
timeout 600 apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1
