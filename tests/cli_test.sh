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
# other images: what they are, not a safetensors header of absurd length
G=tests/golden/images
expect_ok "info on a JPEG" "jpeg_420.jpg: JPEG image, 21x15" "$SD" info $G/jpeg_420.jpg
expect_ok "info on a JPEG: no settings" "no generation parameters" "$SD" info $G/jpeg_420.jpg
expect_ok "info on a WebP" "WebP image, 14x9" "$SD" info $G/webp_lossless.webp
expect_ok "info on a BMP" "BMP image, 9x6" "$SD" info $G/bmp_rgb24.bmp
cp $G/jpeg_444.jpg "$T/photo.png"
expect_ok "info on a JPEG named .png" "photo.png: JPEG image" "$SD" info "$T/photo.png"
printf 'GIF89a\001\000\001\000' >"$T/anim.gif"
expect_ok "info on a GIF" "anim.gif: GIF image (sd reads PNG, JPEG, WebP and BMP images)" "$SD" info "$T/anim.gif"


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
expect_no_output "generate: width 500" "-W: 500 is not a multiple of 8" -m $M -p cat -W 500 -H 32
expect_no_output "generate: steps 0" "--steps: 0 is out of range 1..1000" -m $M -p cat --steps 0
expect_no_output "generate: unknown sampler" "euler_a" -m $M -p cat --sampling-method bogus
printf 'not an image' >"$T/bad.png"
expect_no_output "generate: unreadable init image" "bad.png" -m $M -p cat -i "$T/bad.png"
"$SD" -m $M -p mask -W 32 -H 32 --steps 1 -o "$T/mask32.png" 2>/dev/null # any 32x32 picture will do as a mask
NOMODEL_EARLY=/nonexistent/m.safetensors # flags are checked before the model is looked for
expect_no_output "generate: mask of another size" "same size" -m $M -p cat -i tests/golden/pipeline/init.png --mask "$T/mask32.png" -W 48 -H 32
expect_no_output "generate: --mask-blur without a mask" "mask blur needs a mask" -m $M -p cat -i tests/golden/pipeline/init.png --mask-blur 4
expect_no_output "generate: --masked-content checked" "--masked-content: \"blur\"" -m $NOMODEL_EARLY -p cat --masked-content blur
expect_no_output "generate: --timestep-spacing checked" "--timestep-spacing: \"uniform\"" -m $NOMODEL_EARLY -p cat --timestep-spacing uniform
expect_no_output "generate: --mask-blur out of range" "--mask-blur: 500 is out of range 0..128" -m $NOMODEL_EARLY -p cat --mask-blur 500
if "$SD" -m tests/golden/inpaint/sd1 -p cat -i tests/golden/inpaint/crop_init.png --mask tests/golden/inpaint/crop_mask.png \
    --mask-blur 4 --inpaint-only-masked --inpaint-padding 8 --masked-content "latent noise" --timestep-spacing trailing \
    --clip-skip-negative 2 -W 64 -H 48 --steps 2 -o "$T/inp.png" 2>"$T/err"; then ok "generate: inpainting with the web UIs' options"
else bad "generate: inpainting with the web UIs' options" "$(head -c 300 "$T/err")"; fi
expect_ok "generate: only masked keeps the init image's size" "96x72" "$SD" info "$T/inp.png"
expect_ok "generate: only masked in the settings text" "Mask blur: 4, Inpaint area: Only masked, Masked area padding: 8" "$SD" info "$T/inp.png"
expect_error "generate: output folder missing" "output folder does not exist" "$SD" -m $M -p cat -o "$T/nodir/out.png"
expect_error "generate: no prompt" "no prompt" "$SD" -m $M -o "$T/out.png"

# numeric flags: finite and in range, in every command (they were replaced by the model's default before)
NOMODEL=/nonexistent/m.safetensors # the flags are refused before the model is looked for
for bad in "--cfg-scale -5" "--cfg-scale -inf" "--cfg-scale nan" "--cfg-scale 1e999" "--cfg 101" "--steps 1e999" "--steps 2.5" \
           "--eta nan" "--strength 2" "--guidance-rescale inf" "--variation-strength -0.5" "-W 1e2" "--size 99999999999x64" \
           "--clip-skip 13" "--batch-size 0" "-b 0" "-t -1" "--seed 18446744073709551616" "--seed 1e3" "--cfg-scale 0x10"; do
    set -- $bad
    expect_no_output "generate $bad refused" "$1" -m $NOMODEL -p cat $bad
done
expect_no_output "generate: --variation-seed takes one seed" "--variation-seed: sd generate takes one seed" -m $NOMODEL -p cat --variation-seed 1:3 --variation-strength 0.5
expect_no_output "generate: --prediction is checked before loading" "--prediction \"x\" is not auto, eps or v" -m $NOMODEL -p cat --prediction x
expect_error "compare: --cfg -5 refused" "--cfg \"5,-5\": item \"-5\": -5 is out of range 0..100" "$SD" compare -m $NOMODEL -p cat --cfg 5,-5 -o "$T/cmp.png"
expect_error "compare: --steps 1e999 refused" "item \"1e999\": \"1e999\" is not a number" "$SD" compare -m $NOMODEL -p cat --steps 10,1e999 -o "$T/cmp.png"
expect_error "compare: --eta nan refused" "--eta: \"nan\" is not a number" "$SD" compare -m $NOMODEL -p cat --eta nan -o "$T/cmp.png"
LONG=$(head -c 32769 /dev/zero | tr '\0' a) # one byte over SD_PROMPT_MAX_BYTES
expect_no_output "generate: a prompt over the limit, before loading" "-p: 32769 bytes long: at most 32768" -m $NOMODEL -p "$LONG"
expect_no_output "generate: a negative prompt over the limit" "-n: is 32769 bytes long" -m $NOMODEL -p cat -n "$LONG"
printf '{"prompt": "{short|%s}"}\n' "$LONG" >"$T/long.jsonl"
expect_error "batch: an expansion over the limit, with its line" "long.jsonl:1: prompt 2 is 32769 bytes long" "$SD" batch "$T/long.jsonl" --check
printf 'a cat\n' >"$T/one.txt"
expect_error "batch: --cfg-scale -inf refused" "--cfg-scale: \"-inf\" is not a number" "$SD" batch "$T/one.txt" -m $NOMODEL --cfg-scale -inf -o "$T/bout"
expect_error "batch: --steps 0 refused" "--steps: 0 is out of range 1..1000" "$SD" batch "$T/one.txt" -m $NOMODEL --steps 0 -o "$T/bout"
printf '{"prompt": "a", "cfg": -5}\n{"prompt": "b", "steps": 1e999}\n' >"$T/num.jsonl"
"$SD" batch "$T/num.jsonl" -m $NOMODEL -o "$T/bout" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'num.jsonl:1: "cfg" -5 is out of range' "$T/err" && grep -q 'num.jsonl:2: "steps" inf is out of range' "$T/err" && [ ! -e "$T/bout" ]; then
    ok "batch: job keys out of range refused with their lines"; else bad "job keys out of range" "rc $rc: $(cat "$T/err")"; fi
[ ! -e "$T/cmp.png" ] && [ ! -e "$T/bout" ] && ok "nothing written by the refused commands" || bad "refused commands wrote" "$(ls "$T")"

# output paths: checked before the model loads (-m points nowhere: the output's error must come first)
mkdir -p "$T/adir"; : >"$T/afile"
expect_error "generate -o ''" "the output path is empty" "$SD" -m $NOMODEL -p cat -o ''
expect_error "generate -o /proc/..." "cannot write in /proc" "$SD" -m $NOMODEL -p cat -o /proc/sd-test.png
expect_error "generate -o /proc/self/status --overwrite" "cannot write in /proc/self" "$SD" -m $NOMODEL -p cat -o /proc/self/status --overwrite
expect_error "generate -o DIR --overwrite" "is a folder (not replaced, even with --overwrite)" "$SD" -m $NOMODEL -p cat -o "$T/adir" --overwrite
expect_error "generate -o DIR/" "names a folder, not a file" "$SD" -m $NOMODEL -p cat -o "$T/adir/"
expect_error "generate -o /dev/null --overwrite" "exists and is not a regular file" "$SD" -m $NOMODEL -p cat -o /dev/null --overwrite
expect_error "generate -o under a file" "afile is not a folder" "$SD" -m $NOMODEL -p cat -o "$T/afile/x.png"
expect_error "generate -b 2: every numbered output checked" "adir_2.png: is a folder" bash -c "mkdir -p '$T/adir_2.png' && '$SD' -m $NOMODEL -p cat -b 2 -o '$T/adir.png' --overwrite"
expect_error "batch -o ''" "the output folder is empty" "$SD" batch "$T/one.txt" -m $NOMODEL -o ''
expect_error "batch -o /proc/..." "cannot write in /proc" "$SD" batch "$T/one.txt" -m $NOMODEL -o /proc/sd-test
expect_error "batch -o FILE" "afile is not a folder" "$SD" batch "$T/one.txt" -m $NOMODEL -o "$T/afile"
expect_error "batch --contact-sheet DIR" "is a folder" "$SD" batch "$T/one.txt" -m $NOMODEL -o "$T/bout" --contact-sheet "$T/adir" --overwrite
expect_error "batch --contact-sheet that exists" "afile: already exists (use --overwrite" "$SD" batch "$T/one.txt" -m $NOMODEL -o "$T/bout" --contact-sheet "$T/afile"
expect_error "compare -o ''" "the output path is empty" "$SD" compare -m $NOMODEL -p cat -o ''
expect_error "compare -o /proc/..." "cannot write in /proc" "$SD" compare -m $NOMODEL -p cat -o /proc/sd-test/grid.png
expect_error "compare -o DIR --overwrite" "is a folder" "$SD" compare -m $NOMODEL -p cat -o "$T/adir" --overwrite
expect_error "compare: an existing table needs --overwrite" "cmpx.csv: already exists" bash -c ": >'$T/cmpx.csv' && '$SD' compare -m $NOMODEL -p cat -o '$T/cmpx.png'"
expect_error "compare --cells under a file" "afile is not a folder" "$SD" compare -m $NOMODEL -p cat -o "$T/cmp.png" --cells "$T/afile/cells"
expect_error "compare --cells = -o, before loading" "--cells $T/g.png: the cells folder would be made where -o $T/g.png goes" \
    "$SD" compare -m $NOMODEL -p cat -o "$T/g.png" --cells "$T/g.png"
expect_error "compare --cells under -o" "the cells folder would be made where -o" "$SD" compare -m $NOMODEL -p cat -o "$T/g.png" --cells "$T/g.png/c"
expect_error "compare --csv = -o" "--csv $T/./g.png is the same file as -o $T/g.png" "$SD" compare -m $NOMODEL -p cat -o "$T/g.png" --csv "$T/./g.png"
expect_error "compare -o = a cell's file" "is also a cell's file in --cells" \
    "$SD" compare -m $NOMODEL -p cat --samplers euler --steps 1 -o "$T/gc/reference-cfgdefault.png" --cells "$T/gc"
expect_error "compare --cells = an existing file" "afile is not a folder" "$SD" compare -m $NOMODEL -p cat -o "$T/g.png" --cells "$T/afile" --overwrite
[ ! -e "$T/g.png" ] && [ ! -e "$T/gc" ] && ok "compare clashes: nothing written" || bad "compare clashes" "$(ls -A "$T")"
if [ "$(id -u)" != 0 ]; then # root writes anywhere; /proc above stands in for it there
    mkdir -p "$T/ro"; chmod 555 "$T/ro"
    expect_error "generate into a read-only folder" "cannot write in $T/ro" "$SD" -m $NOMODEL -p cat -o "$T/ro/x.png"
    expect_error "batch into a read-only folder" "cannot write in $T/ro" "$SD" batch "$T/one.txt" -m $NOMODEL -o "$T/ro/out"
fi
[ -z "$(ls -A "$T/adir")" ] && [ ! -s "$T/afile" ] && [ ! -e "$T/bout" ] && ok "refused outputs: nothing written" || bad "refused outputs wrote" "$(ls -A "$T" "$T/adir")"

# FIFOs and other non-regular inputs: refused at once, never opened for a blocking read (timeout: a hang fails)
mkfifo "$T/fifo" "$T/fifo.png" "$T/fifo.jsonl"
expect_error "generate -m FIFO" "is a FIFO" timeout 20 "$SD" -m "$T/fifo" -p cat -o "$T/f.png"
expect_error "generate --vae FIFO" "is a FIFO" timeout 20 "$SD" -m $M --vae "$T/fifo" -p cat -o "$T/f.png"
expect_error "generate -i FIFO" "is not a regular file" timeout 20 "$SD" -m $M -p cat -i "$T/fifo.png" -o "$T/f.png"
expect_error "generate --mask FIFO" "is not a regular file" timeout 20 "$SD" -m $M -p cat -i tests/golden/pipeline/init.png --mask "$T/fifo.png" -o "$T/f.png"
expect_error "generate --from-png FIFO" "is a FIFO" timeout 20 "$SD" -m $M --from-png "$T/fifo.png" -o "$T/f.png"
expect_error "generate --from-png /dev/zero" "is not a regular file" timeout 20 "$SD" -m $M --from-png /dev/zero -o "$T/f.png"
expect_error "batch: job file is a FIFO" "fifo.jsonl: is a FIFO" timeout 20 "$SD" batch "$T/fifo.jsonl" --check
expect_error "batch: job file is a folder" "adir: is a folder" timeout 20 "$SD" batch "$T/adir" --check
printf '{"prompt": "a", "init_image": "%s"}\n' "$T/fifo.png" >"$T/fifo-init.jsonl"
expect_error "batch: a job's init_image is a FIFO" "fifo-init.jsonl:1: \"init_image\" \"$T/fifo.png\" is not a regular file" timeout 20 "$SD" batch "$T/fifo-init.jsonl" --check
expect_error "compare -m FIFO" "is a FIFO" timeout 20 "$SD" compare -m "$T/fifo" -p cat -o "$T/f.png"
[ ! -e "$T/f.png" ] && ok "FIFO inputs: nothing written" || bad "FIFO inputs" "wrote $T/f.png"

# a real render, then the existing file is kept unless --overwrite
expect_ok_file() { local name=$1 file=$2; shift 2; "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -ne 0 ] || [ ! -s "$file" ]; then bad "$name" "rc $rc: $(head -c 300 "$T/err")"; else ok "$name"; fi; }
rm -f "$T/out.png"
expect_ok_file "generate: renders a PNG" "$T/out.png" "$SD" -m $M -p "a red circle" -W 48 -H 32 --steps 2 -s 5 -o "$T/out.png"
sum1=$(sha256sum "$T/out.png" | cut -c1-64)
expect_error "generate: existing output without --overwrite" "already exists" "$SD" -m $M -p "a blue square" -W 48 -H 32 --steps 2 -o "$T/out.png"
[ "$(sha256sum "$T/out.png" | cut -c1-64)" = "$sum1" ] && ok "existing output untouched" || bad "existing output untouched" "file changed"
expect_ok "info on a generated PNG" "Steps: 2, Sampler: Euler a" "$SD" info "$T/out.png"
cp "$T/out.png" "$T/out-png-without-extension"
expect_ok "info on a PNG by its signature, whatever its name" "Steps: 2, Sampler: Euler a" "$SD" info "$T/out-png-without-extension"
expect_ok_file "generate: --from-png regenerates" "$T/again.png" "$SD" -m $M --from-png "$T/out.png" -o "$T/again.png"
cmp -s <("$SD" info "$T/again.png" | grep -v "^$T") <("$SD" info "$T/out.png" | grep -v "^$T") \
    && ok "--from-png: same settings" || bad "--from-png: same settings" "info differs"
cmp -s "$T/out.png" "$T/again.png" && ok "--from-png: the same image, byte for byte" || bad "--from-png: the same image" "files differ"
# -b with a variation seed: every image keeps the variation seed its infotext records (seeds s, s+1; one variation
# seed), so image 2 is `-s s+1` alone and --from-png gives it back
V="-m $M -p cat -s 10 --steps 2 -W 32 -H 32 --variation-seed 7 --variation-strength 0.3 --overwrite"
"$SD" $V -b 2 -o "$T/vb.png" >/dev/null 2>&1; "$SD" $V -s 11 -o "$T/v11.png" >/dev/null 2>&1
"$SD" -m $M --from-png "$T/vb_2.png" -o "$T/vb-again.png" --overwrite >/dev/null 2>&1
cmp -s "$T/vb_2.png" "$T/v11.png" && cmp -s "$T/vb_2.png" "$T/vb-again.png" \
    && ok "-b with --variation-seed: image 2 is seed 11 with the same variation seed, as its infotext says" \
    || bad "-b with --variation-seed" "image 2 is not -s 11 --variation-seed 7, or --from-png differs"
# --from-png of an img2img picture: the init image is not in the PNG, so it must be given (not a txt2img instead)
"$SD" -m $M -p "a red circle" -W 48 -H 32 --steps 2 -i tests/golden/pipeline/init.png --strength 0.6 -o "$T/i2i.png" 2>/dev/null
expect_error "--from-png of an img2img PNG without -i" "i2i.png was made from an init image (strength 0.6): give it with -i" \
    "$SD" -m $M --from-png "$T/i2i.png" -o "$T/i2i-again.png"
[ ! -e "$T/i2i-again.png" ] && ok "... and writes nothing" || bad "--from-png img2img" "wrote i2i-again.png"
expect_ok_file "--from-png of an img2img PNG with -i" "$T/i2i-again.png" "$SD" -m $M --from-png "$T/i2i.png" -i tests/golden/pipeline/init.png -o "$T/i2i-again.png"
cmp -s "$T/i2i.png" "$T/i2i-again.png" && ok "... the same picture (the stored strength)" || bad "--from-png img2img with -i" "another picture"
# --from-png settings sd refuses: the error names the PNG, before the model loads (tests/data/from-png/make.py)
F=tests/data/from-png
expect_no_output "--from-png: a bad sampler names the PNG" "$F/bad-sampler.png: unknown sampling method \"Foo Bar\"" -m $M --from-png $F/bad-sampler.png
expect_no_output "--from-png: width 63 names the PNG" "$F/width-63.png: width 63 is not a multiple of 8 from 8 to 8192" -m $NOMODEL --from-png $F/width-63.png
expect_no_output "--from-png: a long prompt names the PNG" "$F/long-prompt.png: the prompt is 200000 bytes long" -m $NOMODEL --from-png $F/long-prompt.png
expect_ok_file "--from-png: a sampler alias the library knows (k_euler)" "$T/alias.png" "$SD" -m $M --from-png $F/alias-sampler.png -o "$T/alias.png"
# AUTOMATIC1111's PNGs (make.py): its pre-1.9 "DPM++ 2M Karras", UniPC's ignored schedule, keys we cannot honour
expect_ok_file "--from-png: A1111's \"DPM++ 2M Karras\"" "$T/a1k.png" "$SD" -m $M --from-png $F/a1111-karras.png -o "$T/a1k.png"
expect_ok "... read as dpm++2m with karras" "Sampler: DPM++ 2M, Schedule type: Karras" "$SD" info "$T/a1k.png"
expect_ok_file "--from-png: A1111's UniPC with Karras" "$T/a1u.png" "$SD" -m $M --from-png $F/a1111-unipc-karras.png -o "$T/a1u.png"
grep -qF "warning: $F/a1111-unipc-karras.png: ignoring 'Schedule type: Karras' (AUTOMATIC1111's timestep samplers ignore" "$T/err" \
    && ok "... says the schedule is ignored" || bad "UniPC schedule warning" "$(head -c 300 "$T/err")"
expect_ok "... and draws Automatic's picture" "Sampler: UniPC, Schedule type: Automatic" "$SD" info "$T/a1u.png"
expect_ok_file "--from-png: A1111 keys sd cannot honour" "$T/a1x.png" "$SD" -m $M --from-png $F/a1111-unsupported.png -o "$T/a1x.png"
[ "$(grep -c "^warning: $F/a1111-unsupported.png: ignoring '\(Seed resize from: 128x128\|ENSD: 31337\)' (not supported)$" "$T/err")" = 2 ] \
    && ok "... one warning line each" || bad "unsupported keys warned" "$(head -c 300 "$T/err")"
expect_ok_file "--from-png: a flag replaces the bad value" "$T/fixed.png" "$SD" -m $M --from-png $F/bad-sampler.png --sampler euler -W 32 -H 32 -o "$T/fixed.png"
# sides: help and check agree on 8192, the library's limit, and name the flag
expect_no_output "generate -W 16384 refused by name" "-W: 16384 is not a multiple of 8 from 8 to 8192" -m $NOMODEL -p x -W 16384
expect_no_output "generate --hires-width 16384 refused by name" "--hires-width: 16384 is not a multiple of 8 from 8 to 8192" -m $NOMODEL -p x --hires-width 16384
expect_no_output "generate --size 64x16384 refused by name" "--size: 16384 is not" -m $NOMODEL -p x --size 64x16384
expect_ok "help: -W says 8192" "a multiple of 8 from 8 to 8192" "$SD" generate --help
expect_ok_file "generate: --overwrite replaces" "$T/out.png" "$SD" -m $M -p "a blue square" -W 48 -H 32 --steps 2 -o "$T/out.png" --overwrite
[ "$(sha256sum "$T/out.png" | cut -c1-64)" != "$sum1" ] && ok "--overwrite changed the file" || bad "--overwrite changed the file" "same file"
"$SD" -m $M -p "x" -W 48 -H 32 --steps 1 -b 3 -o "$T/multi.png" 2>/dev/null
[ -s "$T/multi_1.png" ] && [ -s "$T/multi_2.png" ] && [ -s "$T/multi_3.png" ] && [ ! -e "$T/multi.png" ] && ok "batch count numbers the outputs" || bad "batch count numbers the outputs" "$(ls $T)"

# --preview is an output: an existing file is kept without --overwrite, and an input is never written over
printf '{"a": 1}\n' >"$T/notes.jsonl"; cp tests/golden/pipeline/init.png "$T/in.png"
expect_error "generate --preview over an existing file" "notes.jsonl: already exists (use --overwrite" \
    "$SD" -m $M -p x -W 48 -H 32 --steps 1 -o "$T/pv.png" --preview "$T/notes.jsonl"
expect_error "generate --preview = -i, even with --overwrite" "is the same file as -i" \
    "$SD" -m $M -p x -W 48 -H 32 --steps 1 -i "$T/in.png" -o "$T/pv.png" --preview "$T/./in.png" --overwrite
expect_error "generate --preview = --from-png" "is the same file as --from-png" \
    "$SD" -m $M --from-png "$T/out.png" -o "$T/pv.png" --preview "$T/out.png" --overwrite
expect_error "generate --preview = -o by another name" "is also an output image" \
    "$SD" -m $M -p x -W 48 -H 32 --steps 1 -o "$T/pv.png" --preview "$T/../$(basename "$T")/pv.png"
[ "$(cat "$T/notes.jsonl")" = '{"a": 1}' ] && cmp -s "$T/in.png" tests/golden/pipeline/init.png && [ ! -e "$T/pv.png" ] \
    && ok "refused previews: inputs untouched, nothing written" || bad "refused previews" "a file changed or appeared"
cp "$T/in.png" "$T/oldpreview.png"
expect_ok_file "generate --preview over an existing file with --overwrite" "$T/pv.png" \
    "$SD" -m $M -p x -W 48 -H 32 --steps 1 -o "$T/pv.png" --preview "$T/oldpreview.png" --overwrite
! cmp -s "$T/in.png" "$T/oldpreview.png" && ok "... replaced it" || bad "--preview with --overwrite" "file unchanged"
# sd writes PNG data only: other names are refused before loading (a .jpg holding PNG data misleads every program)
expect_error "generate -o out.jpg" "-o $T/out.jpg: sd writes PNG files; use a .png name" "$SD" -m $NOMODEL -p x -o "$T/out.jpg"
expect_error "generate -o without an extension" "sd writes PNG files" "$SD" -m $NOMODEL -p x -b 2 -o "$T/out"
expect_ok_file "generate -o OUT.PNG (any case)" "$T/up.PNG" "$SD" -m $M -p x -W 48 -H 32 --steps 1 -o "$T/up.PNG"
expect_error "generate --preview notes.jsonl --overwrite" "--preview $T/notes.jsonl: sd writes PNG files" \
    "$SD" -m $NOMODEL -p x -o "$T/pv2.png" --preview "$T/notes.jsonl" --overwrite
expect_error "compare -o grid.webp" "-o $T/grid.webp: sd writes PNG files" "$SD" compare -m $NOMODEL -p x -o "$T/grid.webp"
expect_error "compare --chart chart.svg" "--chart $T/c.svg: sd writes PNG files" "$SD" compare -m $NOMODEL -p x -o "$T/g2.png" --chart "$T/c.svg"
[ ! -e "$T/out.jpg" ] && [ ! -e "$T/out_1" ] && [ "$(cat "$T/notes.jsonl")" = '{"a": 1}' ] && [ ! -e "$T/grid.webp" ] \
    && ok "non-PNG names: nothing written" || bad "non-PNG names" "$(ls -A "$T")"

# temp files of an interrupted run into the same outputs are removed; others' files are not
: >"$T/.tmpout.png.Ab12Cd"; : >"$T/.tmpout_2.png.Xy34Zw"; : >"$T/.keep.png.Ab12Cd"; : >"$T/.tmpout.png.bak"
"$SD" -m $M -p x -W 48 -H 32 --steps 1 -o "$T/tmpout.png" 2>/dev/null
[ ! -e "$T/.tmpout.png.Ab12Cd" ] && [ -e "$T/.tmpout_2.png.Xy34Zw" ] && [ -e "$T/.keep.png.Ab12Cd" ] && [ -e "$T/.tmpout.png.bak" ] && [ -s "$T/tmpout.png" ] \
    && ok "generate removes the temp files of its own output names" || bad "temp clean-up" "$(ls -A "$T")"

# one parser for the shared flags: the same names and help lines in the three commands
for f in "-m, --model" "--vae PATH" "--backend NAME" "-t, --threads" "--prediction P" "-n, --negative-prompt, --negative" "-W, --width" \
         "--size WxH" "--schedule-convention, --convention" "--eta X" "--rng cuda|cpu" "--sampler-rng" "--clip-skip" "--vae-tiling" "--no-vae-tiling"; do
    g=$("$SD" generate --help | grep -F -- "  $f"); b=$("$SD" batch --help | grep -F -- "  $f"); c=$("$SD" compare --help | grep -F -- "  $f")
    if [ -n "$g" ] && [ "$g" = "$b" ] && [ "$g" = "$c" ]; then ok "help: \"$f\" alike in generate, batch and compare"
    else bad "help: $f" "generate \"$g\", batch \"$b\", compare \"$c\""; fi
done
for f in "--steps N" "--cfg-scale, --cfg X" "--sampling-method, --sampler" "--scheduler NAME" "-i, --init-img, --init-image" "--strength, --denoising-strength X" "--batch-size"; do
    g=$("$SD" generate --help | grep -F -- "  $f"); b=$("$SD" batch --help | grep -F -- "  $f")
    if [ -n "$g" ] && [ "$g" = "$b" ]; then ok "help: \"$f\" alike in generate and batch"; else bad "help: $f" "generate \"$g\", batch \"$b\""; fi
done
expect_ok_file "generate takes batch's spellings (--sampler, --cfg, --negative, --size)" "$T/spell.png" \
    "$SD" -m $M -p x --sampler euler --cfg 5 --negative blurry --size 48x32 --steps 1 -o "$T/spell.png"
expect_ok "... and stores what they say" "Steps: 1, Sampler: Euler, Schedule type: Automatic, CFG scale: 5" "$SD" info "$T/spell.png"

# near misses are named (stable-diffusion.cpp's and A1111's spellings); underscores stand for dashes in the shared flags
expect_error "generate --schedule: did you mean" 'unknown option "--schedule" (did you mean --scheduler?)' "$SD" -m $NOMODEL -p x --schedule karras
expect_error "generate --stepz: did you mean" 'unknown option "--stepz" (did you mean --steps?)' "$SD" -m $NOMODEL -p x --stepz 3
expect_error "generate --from_pgn: did you mean" '(did you mean --from-png?)' "$SD" -m $NOMODEL --from_pgn x.png
expect_error "generate --bogus: no guess" 'unknown option "--bogus" (try sd generate --help)' "$SD" -m $NOMODEL -p x --bogus
expect_error "compare --scheduler: did you mean" 'unknown option "--scheduler" (did you mean --schedulers?)' "$SD" compare -m $NOMODEL -p x --scheduler karras
expect_ok_file "generate --cfg_scale --sampling_method --denoising-strength" "$T/under.png" "$SD" -m $M -p x --cfg_scale 5 --sampling_method euler \
    -i tests/golden/pipeline/init.png --denoising-strength 0.6 --size 48x32 --steps 2 -o "$T/under.png"
expect_ok "... and stores what they say" "Sampler: Euler, Schedule type: Automatic, CFG scale: 5," "$SD" info "$T/under.png"
expect_ok "... the strength too" "Denoising strength: 0.6" "$SD" info "$T/under.png"

# LoRA and textual inversion: --lora, --lora-model-dir, --embd-dir in the three commands; errors name the file
L=tests/golden/lora/loras
E=tests/golden/lora/emb
for f in "--lora PATH" "--lora-model-dir DIR" "--embd-dir, --embedding-dir DIR"; do
    g=$("$SD" generate --help | grep -F -- "  $f"); b=$("$SD" batch --help | grep -F -- "  $f"); c=$("$SD" compare --help | grep -F -- "  $f")
    if [ -n "$g" ] && [ "$g" = "$b" ] && [ "$g" = "$c" ]; then ok "help: \"$f\" alike in generate, batch and compare"
    else bad "help: $f" "generate \"$g\", batch \"$b\", compare \"$c\""; fi
done
expect_ok_file "generate with a tag, a --lora file and an embedding" "$T/lora.png" \
    "$SD" -m $M -p "a hexstyle circle <lora:sd1_kohya:0.8>" --lora-model-dir $L --lora $L/sd1_peft.safetensors:0.5:-1 --embd-dir $E \
    --size 48x32 --steps 2 -o "$T/lora.png"
expect_ok "... the PNG keeps the tag and A1111's hashes" "a hexstyle circle <lora:sd1_kohya:0.8>" "$SD" info "$T/lora.png"
expect_ok "... Lora hashes" "Lora hashes: \"sd1_peft: " "$SD" info "$T/lora.png"
expect_ok "... TI hashes" "TI hashes: \"hexstyle: " "$SD" info "$T/lora.png"
# a LoRA in the embeddings folder is no embedding: skipped with one warning line, as A1111 does (it stopped the run)
expect_ok_file "--embd-dir holding a LoRA: skipped" "$T/skip.png" "$SD" -m $M -p "a green cross" --steps 2 -W 32 -H 32 \
    --embd-dir samples/models/loras -o "$T/skip.png"
[ "$(grep -c "^warning: samples/models/loras/cross.safetensors: not a textual-inversion embedding .*: skipped$" "$T/err")" = 1 ] \
    && ok "... with one warning line" || bad "--embd-dir LoRA warning" "$(head -c 300 "$T/err")"
expect_ok_file "--from-png resolves them again" "$T/lora2.png" "$SD" -m $M --from-png "$T/lora.png" --lora-model-dir $L --embd-dir $E -o "$T/lora2.png"
cmp -s "$T/lora.png" "$T/lora2.png" && ok "... to the same picture" || bad "--from-png with LoRAs" "another picture"
expect_ok "info on a LoRA" "LoRA adapter (kohya-ss / AUTOMATIC1111 layout), 61 modules" "$SD" info $L/sd1_kohya.safetensors
expect_ok "info on a LoRA: its family" "family          SDXL" "$SD" info $L/sdxl_peft.safetensors
expect_ok "info on an embedding" "textual-inversion embedding, used where \"hexstyle\" appears" "$SD" info $E/hexstyle.safetensors
expect_no_output "generate: a tag without --lora-model-dir" "<lora:sd1_kohya:1>: no LoRA folder given (--lora-model-dir)" -m $M -p "x <lora:sd1_kohya:1>" --size 48x32
expect_no_output "generate: a tag naming no file" "<lora:nope>: no nope.safetensors in $L" -m $M -p "x <lora:nope>" --lora-model-dir $L --size 48x32
expect_no_output "generate: a LoRA of another family" "sdxl_kohya.safetensors: a LoRA for SDXL" -m $M -p x --lora $L/sdxl_kohya.safetensors --size 48x32
expect_no_output "generate: --lora of a missing file, before loading" "--lora: file \"/nonexistent/x.safetensors\" cannot be read" -m $NOMODEL -p x --lora /nonexistent/x.safetensors
expect_no_output "generate: --lora with a bad strength" "sd1_peft.safetensors\": \"1:nan\" is not WEIGHT[:UNET_WEIGHT]" -m $NOMODEL -p x --lora $L/sd1_peft.safetensors:1:nan
expect_no_output "generate: --lora-model-dir not a folder" "--lora-model-dir: \"$L/sd1_peft.safetensors\" is not a folder" -m $NOMODEL -p x --lora-model-dir $L/sd1_peft.safetensors
printf 'PK\003\004rest' >"$T/picklelora.pt"
expect_no_output "generate: a pickled LoRA refused" "can execute arbitrary code" -m $M -p "x <lora:picklelora>" --lora-model-dir "$T" --size 48x32
# compare: a cell per LoRA from {a|b} variants of the prompt; batch: per-job "lora" and tags
expect_ok_file "compare: LoRA variants as rows" "$T/lcmp.png" "$SD" compare -m $M -p "x {|<lora:sd1_kohya:0.8>|<lora:sd1_peft>}" \
    --lora-model-dir $L --samplers euler --steps 2 --size 48x32 --reference euler:4 -q -o "$T/lcmp.png"
grep -q '^3,euler,' "$T/lcmp.csv" && [ "$(grep -c ',euler,' "$T/lcmp.csv")" = 3 ] && ok "compare: one row per variant" || bad "compare variants" "$(cat "$T/lcmp.csv")"
"$SD" -m $M -p "x <lora:sd1_peft>" --lora-model-dir $L --sampler euler --steps 2 --size 48x32 -o "$T/alone.png" 2>/dev/null
printf '{"prompt": "x", "lora": ["%s:0.7"], "seed": 42}\n{"prompt": "x <lora:sd1_peft>", "seed": 42}\n' "$L/sd1_kohya.safetensors" >"$T/loras.jsonl"
"$SD" batch "$T/loras.jsonl" -m $M --lora-model-dir $L --sampler euler --steps 2 --size 48x32 -o "$T/lbatch" -q 2>"$T/err"
[ $? = 0 ] && [ "$(ls "$T/lbatch"/*.png 2>/dev/null | wc -l)" = 2 ] && ok "batch: a LoRA per job (\"lora\" key, tags)" || bad "batch with LoRAs" "$(cat "$T/err")"
cmp -s "$T/lbatch/00001-42-x-lora-sd1-peft.png" "$T/alone.png" && ok "batch: after another job's LoRA, a fresh process's picture" \
    || bad "batch LoRA switching" "$(ls "$T/lbatch")"
printf '{"prompt": "x", "lora": "/nonexistent/l.safetensors"}\n' >"$T/badlora.jsonl"
expect_error "batch: a job's missing LoRA, before loading" "badlora.jsonl:1: \"lora\" file \"/nonexistent/l.safetensors\" cannot be read" \
    "$SD" batch "$T/badlora.jsonl" -m $NOMODEL -o "$T/lbatch2"
# ControlNet: flags per --control-net, the PNG records them, --from-png redoes them, errors name the flag or file
C=tests/golden/controlnet
expect_ok_file "controlnet: two ControlNets, canny on the second" "$T/cn.png" "$SD" -m $M -p "a red circle" -W 48 -H 32 --steps 2 \
    --control-net $C/sd1_cn_a --control-image $C/control_a.png --control-strength 0.7 \
    --control-net $C/sd1_cn_b --control-image $C/canny_shapes.png --canny --control-end 0.5 -o "$T/cn.png"
expect_ok "controlnet: recorded as sd-webui-controlnet does" 'ControlNet 1: "Module: canny, Model: sd1_cn_b [' "$SD" info "$T/cn.png"
expect_ok_file "controlnet: --from-png" "$T/cn2.png" "$SD" -m $M --from-png "$T/cn.png" -o "$T/cn2.png"
cmp -s "$T/cn.png" "$T/cn2.png" && ok "controlnet: --from-png gives the same picture" || bad "controlnet: --from-png" "pictures differ"
expect_no_output "controlnet: no control image" "has no --control-image" -m $M -p x -W 48 -H 32 --control-net $C/sd1_cn_a
expect_no_output "controlnet: settings without a ControlNet" "without --control-net" -m $M -p x -W 48 -H 32 --control-strength 2
expect_no_output "controlnet: strength out of range" "--control-strength 20" -m $M -p x --control-net $C/sd1_cn_a --control-image $C/control_a.png --control-strength 20
expect_no_output "controlnet: unreadable control image" "nothere.png" -m $M -p x --control-net $C/sd1_cn_a --control-image "$T/nothere.png"
expect_no_output "controlnet: another family's" "an SDXL ControlNet cannot steer sd1" -m $M -p x -W 48 -H 32 --control-net $C/sdxl_cn_a --control-image $C/control_a.png
printf '{"prompt": "a {red|blue} circle", "control_net": "%s", "control_image": "{%s|%s}", "size": "48x32", "steps": 1}\n' \
    "$C/sd1_cn_a" "$C/control_a.png" "$C/control_b.png" >"$T/cn.jsonl"
expect_ok_file "controlnet: batch job with a group of control images" "$T/cnb/00003-42-a-blue-circle.png" "$SD" batch -m $M "$T/cn.jsonl" -o "$T/cnb" -q
expect_ok "controlnet: the batch's last image has the second control image" "control_b.png" "$SD" info "$T/cnb/00003-42-a-blue-circle.png"
expect_ok_file "controlnet: compare" "$T/cnc.png" "$SD" compare -m $M -p x --size 48x32 --samplers euler --steps 1,2 --reference euler:3 \
    --control-net $C/sd1_cn_a --control-image $C/control_a.png -o "$T/cnc.png" -q

# without -m: the bundled demo model, found from any working directory (the build records the source folder)
SDA=$(cd "$(dirname "$SD")" && pwd)/$(basename "$SD")
expect_ok_file "generate without -m, elsewhere" "$T/demo.png" bash -c "cd '$T' && '$SDA' -p 'a small yellow ring on a black background, top left' --steps 4 -o demo.png"
expect_ok "without -m: the demo model" "Model: shapes," "$SD" info "$T/demo.png"
expect_ok "without -m: at the demo model's 128x128" "Size: 128x128," "$SD" info "$T/demo.png"

echo "$label: $pass passed, $fail failed"
[ $fail -eq 0 ]
