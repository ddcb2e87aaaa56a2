#!/usr/bin/env bash
# cli_test.sh — the `sd` command as a user runs it: exit codes, one-line errors, no partial output.
# Usage: tests/cli_test.sh [path/to/sd]; prints "cli: N passed, M failed".
set -u
SD=${1:-./sd}
label=${TEST_LABEL:-cli}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# expect_error NAME NEEDLE CMD...: exit status 1, exactly one stderr line starting "error:" containing NEEDLE
expect_error() {
    local name=$1 needle=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    local lines; lines=$(wc -l <"$T/err")
    if [ $rc -ne 1 ]; then bad "$name" "exit status $rc, expected 1"; return; fi
    if [ "$lines" -ne 1 ] || ! grep -q "^error: " "$T/err"; then bad "$name" "stderr is not one error line: $(head -c 300 "$T/err")"; return; fi
    if ! grep -qF -- "$needle" "$T/err"; then bad "$name" "message lacks \"$needle\": $(cat "$T/err")"; return; fi
    ok "$name"
}
expect_ok() {
    local name=$1 needle=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -ne 0 ]; then bad "$name" "exit status $rc: $(head -c 300 "$T/err")"; return; fi
    if ! grep -qF -- "$needle" "$T/out"; then bad "$name" "output lacks \"$needle\": $(head -c 300 "$T/out")"; return; fi
    ok "$name"
}

expect_ok "version" "sd " "$SD" --version
expect_ok "info on a safetensors file" "15 tensors, 30784 parameters" "$SD" info tests/golden/ops/resnet.safetensors
expect_error "info on a missing file" "/nonexistent/model.safetensors" "$SD" info /nonexistent/model.safetensors
head -c 100 tests/golden/ops/resnet.safetensors >"$T/trunc.safetensors"
expect_error "info on a truncated file" "trunc.safetensors: header length" "$SD" info "$T/trunc.safetensors"
printf 'PK\003\004rest' >"$T/model.ckpt"
expect_error "info on a .ckpt refuses to unpickle" "convert it to .safetensors" "$SD" info "$T/model.ckpt"
mkdir -p "$T/notamodel"
expect_error "folder without model_index.json" "without model_index.json" "$SD" info "$T/notamodel"
expect_error "unknown command" "unknown command" "$SD" frobnicate

echo "$label: $pass passed, $fail failed"
[ $fail -eq 0 ]
