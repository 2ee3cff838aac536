#!/usr/bin/env bash
# Installs Debian's chromium for the privacy page's browser test (Playwright drives it with ExecutablePath=/usr/bin/chromium;
# Playwright never downloads a browser here). Idempotent: does nothing when chromium is already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
