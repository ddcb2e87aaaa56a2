#!/usr/bin/env bash
# hostile_test.sh — files that once crashed, hung or fooled `sd` (tests/data/hostile/, from fuzzing and hostile
# command lines) and non-regular files where a file is expected: each ends in a clean refusal (exit 1, one
# "error:" line naming the file, no output file, so no sanitizer report either under `make asan-test`) or in a
# correct result. Usage: tests/hostile_test.sh [path/to/sd]; prints "hostile: N passed, M failed".
set -u
SD=${1:-./sd}
label=${TEST_LABEL:-hostile}
H=tests/data/hostile
M=tests/golden/pipeline/sd1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# refuses NAME NEEDLE CMD...: exit status 1 within 60 s (a FIFO must not hang it), exactly one stderr line, starting
# "error:" and containing NEEDLE (a regular expression with GREP_MODE=E), and no $T/out.png
refuses() {
    local name=$1 needle=$2; shift 2
    rm -f "$T/out.png"
    timeout 60 "$@" >"$T/stdout" 2>"$T/err"; local rc=$?
    if [ $rc -eq 124 ]; then bad "$name" "still running after 60 s (blocked?)"; return; fi
    if [ $rc -ne 1 ]; then bad "$name" "exit status $rc, expected 1: $(head -c 600 "$T/err")"; return; fi
    if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q "^error: " "$T/err"; then bad "$name" "stderr is not one error line: $(head -c 600 "$T/err")"; return; fi
    if ! grep -q${GREP_MODE:-F} -- "$needle" "$T/err"; then bad "$name" "message lacks \"$needle\": $(cat "$T/err")"; return; fi
    if [ -e "$T/out.png" ]; then bad "$name" "left an output file"; return; fi
    ok "$name"
}

# ---- images given as -i / --mask (stb_image 2.27 over-read a 16-bit PGM and overflowed on a JPEG DHT) ----
refuses "PGM as init image: refused by name" "PNM (PBM/PGM/PPM/PAM) images are not supported" "$SD" -m $M -p x -i $H/stb-pnm16-overread.pgm -o "$T/out.png"
refuses "PGM as mask: refused by name" "stb-pnm16-overread.pgm: PNM" "$SD" -m $M -p x -i $M/../init.png --mask $H/stb-pnm16-overread.pgm -o "$T/out.png"
refuses "JPEG with a broken Huffman table" "stb-jpeg-dht-overflow.jpg: unreadable JPEG" "$SD" -m $M -p x -i $H/stb-jpeg-dht-overflow.jpg -o "$T/out.png"

# ---- --inpaint-only-masked with a picture too narrow for the generation's aspect ratio: its crop scaled to 0 pixels
# across ("resize 1x300 -> 0x128: bad size"); now at least one latent pixel, and the result keeps the picture's size ----
rm -f "$T/out.png"
timeout 60 "$SD" -m $M -p x --steps 2 -i $H/narrow-1x300.png --mask $H/narrow-1x300.png --inpaint-only-masked -o "$T/out.png" \
    >"$T/stdout" 2>"$T/err"; rc=$?
size=$(od -An -tu1 -j16 -N8 "$T/out.png" 2>/dev/null | tr -s ' ')
if [ $rc -eq 0 ] && [ "$size" = " 0 0 0 1 0 0 1 44" ]; then ok "--inpaint-only-masked on a 1x300 picture: a 1x300 result"
else bad "--inpaint-only-masked on a 1x300 picture" "rc $rc, IHDR size bytes '$size': $(head -c 600 "$T/err")"; fi

# ---- a prompt weight past a float's range scaled the embedding to inf: a black picture with exit 0 ----
refuses "prompt weight 1e40" "is too large a weight" "$SD" -m $M -p "(a:1$(printf '0%.0s' $(seq 40)))" -o "$T/out.png"

# ---- --from-png ----
# the row buffer of the text reader leaked when libpng longjmp'd on this file's broken pixel rows; the settings
# are now read without decoding the pixels, so the settings (a valid zTXt chunk) give a picture, and `sd info`,
# which decodes the pixels, refuses it
rm -f "$T/leak.png"
timeout 60 "$SD" -m $M --from-png $H/png-text-row-leak.png -W 32 -H 32 -o "$T/leak.png" >"$T/stdout" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] && [ -s "$T/leak.png" ] && ! grep -qiE "error|sanitizer" "$T/err" && "$SD" info "$T/leak.png" | grep -q "^Steps: 5, .*Seed: 1,"; then
    ok "--from-png of a PNG with broken pixels: its settings (Steps: 5, Seed: 1)"
else bad "--from-png of a PNG with broken pixels" "rc $rc: $(head -c 600 "$T/err")"; fi
refuses "sd info on a PNG with broken pixels" "png-text-row-leak.png: unreadable PNG" "$SD" info $H/png-text-row-leak.png
refuses "--from-png with huge JSON numbers" "\"width\" must be a whole number from 8 to 8192" "$SD" -m $M --from-png $H/from-png-json-float-cast.png -o "$T/out.png"

# ---- --vae with a pickle (a double free in the model-files cleanup) ----
refuses "--vae pickle" "vae-pickle.ckpt: PyTorch pickle" "$SD" -m $M -p x --vae $H/vae-pickle.ckpt -o "$T/out.png"
printf '{"prompt": "x"}\n' >"$T/one.jsonl"
rm -rf "$T/b"
timeout 60 "$SD" batch "$T/one.jsonl" -m $M --vae $H/vae-pickle.ckpt -o "$T/b" >"$T/stdout" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "^error: .*vae-pickle.ckpt: PyTorch pickle" "$T/err" && [ -z "$(ls "$T/b" 2>/dev/null | grep '\.png$')" ]; then
    ok "batch --vae pickle"; else bad "batch --vae pickle" "rc $rc: $(head -c 600 "$T/err")"; fi

# ---- a UNet config.json whose sample_size overflowed sample_size * 8 (sd info printed a negative resolution) ----
cp -r $M "$T/m"
sed -i 's/"sample_size": [0-9]*/"sample_size": 999999999/' "$T/m/unet/config.json"
grep -q '"sample_size": 999999999' "$T/m/unet/config.json" || bad "patched config" "sed did not patch unet/config.json"
refuses "sd info: sample_size 999999999" "unet/config.json: \"sample_size\" must be a whole number from 1 to 2048" "$SD" info "$T/m"
refuses "generate: sample_size 999999999" "\"sample_size\" must be a whole number" "$SD" -m "$T/m" -p x -o "$T/out.png"

# ---- non-regular files where a file is expected: refused by fstat before any read could block ----
# (the CLI checks its own arguments first, naming the flag; the library refuses them too, tests/test_fileio.c)
mkfifo "$T/fifo"
nonreg='fifo("|:) (is a FIFO, )?(is )?not a regular file'
GREP_MODE=E refuses "FIFO as -i" "$nonreg" "$SD" -m $M -p x -i "$T/fifo" -o "$T/out.png"
GREP_MODE=E refuses "FIFO as --mask" "$nonreg" "$SD" -m $M -p x -i $M/../init.png --mask "$T/fifo" -o "$T/out.png"
GREP_MODE=E refuses "FIFO as -m" "$nonreg" "$SD" -m "$T/fifo" -p x -o "$T/out.png"
GREP_MODE=E refuses "FIFO as --vae" "$nonreg" "$SD" -m $M -p x --vae "$T/fifo" -o "$T/out.png"
GREP_MODE=E refuses "FIFO as --from-png" "$nonreg" "$SD" -m $M --from-png "$T/fifo" -o "$T/out.png"
GREP_MODE=E refuses "FIFO for sd info" "$nonreg" "$SD" info "$T/fifo"
refuses "/dev/zero as -i" "/dev/zero" "$SD" -m $M -p x -i /dev/zero -o "$T/out.png"
refuses "a folder as -i" "not a regular file" "$SD" -m $M -p x -i "$T" -o "$T/out.png"
for f in model_index.json unet/config.json unet/diffusion_pytorch_model.safetensors vae/config.json text_encoder/config.json \
         scheduler/scheduler_config.json tokenizer/vocab.json tokenizer/merges.txt; do
    rm -rf "$T/mf"; cp -r $M "$T/mf"; rm "$T/mf/$f"; mkfifo "$T/mf/$f"
    refuses "FIFO as $f in a diffusers folder" "mf/$f: not a regular file" "$SD" -m "$T/mf" -p x -o "$T/out.png"
done
printf '{"prompt": "x", "init_image": "%s"}\n' "$T/fifo" >"$T/fifo.jsonl"
rm -rf "$T/b"
timeout 60 "$SD" batch "$T/fifo.jsonl" -m $M --steps 1 -o "$T/b" >"$T/stdout" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -qE "$nonreg" "$T/err" && [ -z "$(ls "$T/b" 2>/dev/null | grep '\.png$')" ]; then
    ok "batch: FIFO as a job's init_image"; else bad "batch: FIFO as a job's init_image" "rc $rc: $(head -c 600 "$T/err")"; fi

echo "$label: $pass passed, $fail failed"
[ $fail -eq 0 ]
