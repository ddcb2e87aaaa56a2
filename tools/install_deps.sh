#!/usr/bin/env bash
# install_deps.sh — installs the Debian packages the build and `make test` need, only those that are missing.
# The build: compilers and libraries. The tests: libyaml (tests/yaml/yaml_paths.c checks the Kubernetes sample) and
# a single-node Slurm with munge (tests/slurm_test.sh), without their recommends (those add ~36 unneeded packages).
set -e
# clang + libclang-rt-14-dev: libFuzzer for `make fuzz` (the build and `make test` use gcc)
pkgs="build-essential libpng-dev libjpeg62-turbo-dev libwebp-dev zlib1g-dev libstb-dev libopenblas-dev libcjson-dev clang libclang-rt-14-dev"
test_pkgs="libyaml-dev slurmctld slurmd slurm-client munge"
missing=""; missing_test=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
for p in $test_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing_test="$missing_test $p"; done
if [ -z "$missing$missing_test" ]; then echo "deps: all present"; exit 0; fi
echo "deps: installing$missing$missing_test"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
[ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
[ -z "$missing_test" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing_test
