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

# generation: bad inputs fail before anything is written
M=tests/golden/pipeline/sd1
expect_no_output() { # NAME NEEDLE ARGS... (with -o $T/out.png)
    local name=$1 needle=$2; shift 2
    rm -f "$T/out.png"
    expect_error "$name" "$needle" "$SD" "$@" -o "$T/out.png"
    if [ -e "$T/out.png" ]; then bad "$name" "left an output file"; fi
}
expect_no_output "generate: missing model file" "/nonexistent/m.safetensors: no such file" -m /nonexistent/m.safetensors -p cat
expect_no_output "generate: folder without model_index.json" "without model_index.json" -m "$T/notamodel" -p cat
head -c 3000 "$M/unet/diffusion_pytorch_model.safetensors" >"$T/trunc2.safetensors"
expect_no_output "generate: truncated checkpoint" "trunc2.safetensors" -m "$T/trunc2.safetensors" -p cat
expect_no_output "generate: .ckpt refused" "can execute arbitrary code" -m "$T/model.ckpt" -p cat
expect_no_output "generate: width 500" "multiples of 8" -m $M -p cat -W 500 -H 32
expect_no_output "generate: steps 0" "--steps 0" -m $M -p cat --steps 0
expect_no_output "generate: unknown sampler" "euler_a" -m $M -p cat --sampling-method bogus
printf 'not an image' >"$T/bad.png"
expect_no_output "generate: unreadable init image" "bad.png" -m $M -p cat -i "$T/bad.png"
"$SD" -m $M -p mask -W 32 -H 32 --steps 1 -o "$T/mask32.png" 2>/dev/null # any 32x32 picture will do as a mask
expect_no_output "generate: mask of another size" "same size" -m $M -p cat -i tests/golden/pipeline/init.png --mask "$T/mask32.png" -W 48 -H 32
expect_error "generate: output folder missing" "output folder does not exist" "$SD" -m $M -p cat -o "$T/nodir/out.png"
expect_error "generate: no prompt" "no prompt" "$SD" -m $M -o "$T/out.png"

# a real render, then the existing file is kept unless --overwrite
expect_ok_file() { local name=$1 file=$2; shift 2; "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -ne 0 ] || [ ! -s "$file" ]; then bad "$name" "rc $rc: $(head -c 300 "$T/err")"; else ok "$name"; fi; }
rm -f "$T/out.png"
expect_ok_file "generate: renders a PNG" "$T/out.png" "$SD" -m $M -p "a red circle" -W 48 -H 32 --steps 2 -s 5 -o "$T/out.png"
sum1=$(sha256sum "$T/out.png" | cut -c1-64)
expect_error "generate: existing output without --overwrite" "already exists" "$SD" -m $M -p "a blue square" -W 48 -H 32 --steps 2 -o "$T/out.png"
[ "$(sha256sum "$T/out.png" | cut -c1-64)" = "$sum1" ] && ok "existing output untouched" || bad "existing output untouched" "file changed"
expect_ok "info on a generated PNG" "Steps: 2, Sampler: Euler a" "$SD" info "$T/out.png"
expect_ok_file "generate: --from-png regenerates" "$T/again.png" "$SD" -m $M --from-png "$T/out.png" -o "$T/again.png"
cmp -s <("$SD" info "$T/again.png" | grep -v "^$T") <("$SD" info "$T/out.png" | grep -v "^$T") \
    && ok "--from-png: same settings" || bad "--from-png: same settings" "info differs"
cmp -s "$T/out.png" "$T/again.png" && ok "--from-png: the same image, byte for byte" || bad "--from-png: the same image" "files differ"
expect_ok_file "generate: --overwrite replaces" "$T/out.png" "$SD" -m $M -p "a blue square" -W 48 -H 32 --steps 2 -o "$T/out.png" --overwrite
[ "$(sha256sum "$T/out.png" | cut -c1-64)" != "$sum1" ] && ok "--overwrite changed the file" || bad "--overwrite changed the file" "same file"
"$SD" -m $M -p "x" -W 48 -H 32 --steps 1 -b 3 -o "$T/multi.png" 2>/dev/null
[ -s "$T/multi_1.png" ] && [ -s "$T/multi_2.png" ] && [ -s "$T/multi_3.png" ] && [ ! -e "$T/multi.png" ] && ok "batch count numbers the outputs" || bad "batch count numbers the outputs" "$(ls $T)"

# without -m: the bundled demo model, found from any working directory (the build records the source folder)
SDA=$(cd "$(dirname "$SD")" && pwd)/$(basename "$SD")
expect_ok_file "generate without -m, elsewhere" "$T/demo.png" bash -c "cd '$T' && '$SDA' -p 'a small yellow ring on a black background, top left' --steps 4 -o demo.png"
expect_ok "without -m: the demo model" "Model: shapes," "$SD" info "$T/demo.png"
expect_ok "without -m: at the demo model's 128x128" "Size: 128x128," "$SD" info "$T/demo.png"

echo "$label: $pass passed, $fail failed"
[ $fail -eq 0 ]
