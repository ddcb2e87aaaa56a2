#!/usr/bin/env bash
# install_deps.sh — installs the Debian packages the build needs, only those that are missing.
set -e
# clang + libclang-rt-14-dev: libFuzzer for `make fuzz` (the build and `make test` use gcc)
pkgs="build-essential libpng-dev libjpeg62-turbo-dev libwebp-dev zlib1g-dev libstb-dev libopenblas-dev libcjson-dev clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -z "$missing" ]; then echo "deps: all present"; exit 0; fi
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
