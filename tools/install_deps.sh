#!/usr/bin/env bash
# install_deps.sh — installs the Debian packages the build and `make test` need, only those that are missing.
# The build: compilers and libraries (libmicrohttpd-dev: `sd serve`). The tests: python3-venv, chromium and
# chromium-driver (tests/server/run.sh drives `sd serve` through real clients and a browser, tools/ venvs), libyaml
# (tests/yaml/yaml_paths.c checks the Kubernetes sample) and a single-node Slurm with munge (tests/slurm_test.sh),
# the last two lists without their recommends (which add dozens of unneeded packages).
# --arm64 (CI, .ci/run): also the AArch64 cross build and its test run: Debian's cross compiler, the arm64
# libraries through multiarch, qemu-user.
set -e
# clang + libclang-rt-14-dev: libFuzzer for `make fuzz` (the build and `make test` use gcc)
pkgs="build-essential libpng-dev libjpeg62-turbo-dev libwebp-dev zlib1g-dev libstb-dev libopenblas-dev libcjson-dev clang libclang-rt-14-dev libmicrohttpd-dev
      python3 python3-venv chromium chromium-driver"
test_pkgs="libyaml-dev slurmctld slurmd slurm-client munge"
if [ "${1:-}" = --arm64 ]; then
    pkgs="$pkgs gcc-aarch64-linux-gnu qemu-user libopenblas-dev:arm64 libpng-dev:arm64 libjpeg62-turbo-dev:arm64 libwebp-dev:arm64 zlib1g-dev:arm64 libcjson-dev:arm64"
fi
# A name without an architecture is checked for the machine's own: with --arm64's multiarch packages installed, a
# bare `dpkg -s libopenblas-dev` is satisfied by the arm64 one and the native library would never be installed.
arch=$(dpkg --print-architecture)
have() { case "$1" in *:*) dpkg -s "$1" ;; *) dpkg -s "$1:$arch" ;; esac >/dev/null 2>&1; }
missing=""; missing_test=""
for p in $pkgs; do have "$p" || missing="$missing $p"; done
for p in $test_pkgs; do have "$p" || missing_test="$missing_test $p"; done
if [ -z "$missing$missing_test" ]; then echo "deps: all present"; exit 0; fi
echo "deps: installing$missing$missing_test"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
case "$missing" in *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64 ;; esac
$SUDO apt-get update -q
[ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
[ -z "$missing_test" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing_test
