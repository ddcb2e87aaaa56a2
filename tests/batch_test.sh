#!/usr/bin/env bash
# batch_test.sh — `sd batch` end to end on a tiny model: bad job files rejected before rendering, shards
# that add up to the whole, resume after kill -9 (at chosen moments and at a random one) and Ctrl-C with no
# duplicate or corrupt image or manifest line, batch packing, foreign files left alone (a file is sd's own only when a
# manifest line has its SHA-256).
# Usage: tests/batch_test.sh [path/to/sd] [model]; prints "batch: N passed, M failed". The default model is the
# tiny random-weight one the unit tests write (tests/tiny_model.c); any model works, e.g. samples/models/shapes.
set -u
SD=${1:-./sd}
MODEL=${2:-build/cache/tiny-sd}
label=${TEST_LABEL:-batch}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# is_png FILE: the PNG signature at the start and a complete IEND chunk at the end
is_png() {
    [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] &&
    [ "$(tail -c 12 "$1" | od -An -tx1 | tr -d ' \n')" = "0000000049454e44ae426082" ]
}
# check_dir NAME DIR N: the manifests of DIR list exactly N distinct files, every line is complete, and each
# file is a whole PNG whose SHA-256 (coreutils, an independent implementation) is the one recorded
check_dir() {
    local name=$1 dir=$2 want=$3 problems=""
    cat "$dir"/manifest*.jsonl >"$T/all.jsonl" 2>/dev/null
    local lines; lines=$(grep -c '' "$T/all.jsonl")
    [ "$lines" -eq "$want" ] || problems+="$lines manifest lines, expected $want; "
    if grep -v -q '^{.*}$' "$T/all.jsonl"; then problems+="an incomplete manifest line; "; fi
    local dups; dups=$(grep -o '"file":"[^"]*"' "$T/all.jsonl" | sort | uniq -d)
    [ -z "$dups" ] || problems+="duplicates: $dups; "
    while IFS= read -r line; do
        local f s
        f=$(sed -E 's/.*"file":"([^"]*)".*/\1/' <<<"$line")
        s=$(sed -E 's/.*"sha256":"([0-9a-f]{64})".*/\1/' <<<"$line")
        if [ ! -f "$dir/$f" ]; then problems+="$f missing; "; continue; fi
        is_png "$dir/$f" || problems+="$f is not a whole PNG; "
        [ "$(sha256sum "$dir/$f" | cut -d' ' -f1)" = "$s" ] || problems+="$f sha256 differs; "
    done <"$T/all.jsonl"
    for f in $(find "$dir" -name '*.png' ! -name 'sheet*'); do is_png "$f" || problems+="$f is a broken PNG; "; done
    if [ -n "$(find "$dir" -name '.*.png.*')" ]; then problems+="temp files left: $(find "$dir" -name '.*.png.*'); "; fi
    if [ -z "$problems" ]; then ok "$name"; else bad "$name" "$problems"; fi
}

if [ ! -e "$MODEL" ]; then
    bad "model" "$MODEL not found (the unit tests write it: build/tests/unit compare_end_to_end)"
    echo "$label: $pass passed, $fail failed"; exit 1
fi
SIZE=${BATCH_TEST_SIZE:-64x64}   # small and few steps: each image takes a fraction of a second
COMMON=(-m "$MODEL" --size "$SIZE" --steps 2 -q)

cat >"$T/jobs.jsonl" <<'EOF'
{"prompt": "a {red|blue} circle on a black background", "seeds": "10:12"}
# the plain form would also do; JSON Lines lets each job set its own parameters
{"prompt": "a large green star on a white background", "count": 1, "sampler": "euler", "output": "stars/{seed}.png"}
{"prompt": "a small yellow square", "seed": 7, "variation_seed": [1, 2], "variation_strength": 0.3, "output": "var-{vseed}"}
EOF
N=9

# ---- bad job files: every problem, with its line number, before anything renders ----
cat >"$T/bad.jsonl" <<'EOF'
{"prompt": "fine"}
{"prompt": "x", "stpes": 3}
{"prompt": "x", "steps": -2
{"prompt": "x", "sampler": "no_such_sampler"}
EOF
"$SD" batch "$T/bad.jsonl" -o "$T/bad-out" "${COMMON[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'bad.jsonl:2: unknown key "stpes" (did you mean "steps"?)' "$T/err" &&
   grep -q 'bad.jsonl:3: invalid JSON' "$T/err" && grep -q 'bad.jsonl:4: "sampler"' "$T/err" &&
   grep -q '3 problems in' "$T/err" && [ ! -e "$T/bad-out" ]; then ok "bad job lines reported with line numbers, nothing rendered"
else bad "bad job lines" "rc $rc: $(cat "$T/err")"; fi

# refused NAME NEEDLE CMD...: exit 1, exactly one stderr line "error: ..." holding NEEDLE, and no $T/refused folder
refused() {
    local name=$1 needle=$2; shift 2
    rm -rf "$T/refused"
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q '^error: ' "$T/err" && grep -qF -- "$needle" "$T/err" &&
       [ ! -e "$T/refused" ]; then ok "$name"; else bad "$name" "rc $rc: $(head -c 300 "$T/err")"; fi
}

# ---- hostile prompt lines (tests/data/hostile, from the issue-17 reproduction set) ----
H=tests/data/hostile
refused "20 000 nested braces: refused at the 33rd, naming file and line" "expand-deep-braces.txt:1: prompt: the group at column 33 nests more than 32 groups deep" \
    "$SD" batch $H/expand-deep-braces.txt -o "$T/refused" "${COMMON[@]}"
refused "201 bytes of nested groups: too many prompts, named at once" "expand-slow-nested.txt:1: prompt: the group at column 190 makes more than" \
    "$SD" batch $H/expand-slow-nested.txt -o "$T/refused" "${COMMON[@]}"
# 2^18 expansions of a 4 KB line are counted and named one at a time (it took 1.07 GB when all were held at once)
"$SD" batch $H/expand-memory-blowup.txt --check >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && grep -q "1 jobs, 262144 images; ok" "$T/out"; then ok "2^18 expansions of a 4 KB line are checked"
else bad "2^18 expansions" "rc $rc: $(head -c 300 "$T/err")"; fi
"$SD" batch $H/expand-memory-blowup.txt --list --shard 262143/262144 >"$T/out" 2>"$T/err"
if [ "$(cut -f1,3 "$T/out")" = "$(printf '262143\t42')" ] && [ "$(cut -f4 "$T/out")" = "bbbbbbbbbbbbbbbbbb$(tail -c +91 $H/expand-memory-blowup.txt | tr -d '\n')" ]; then
    ok "the last of 2^18 expansions, made on its own"; else bad "last expansion" "$(head -c 200 "$T/out")"; fi

"$SD" batch "$T/nonexistent.jsonl" -o "$T/x" "${COMMON[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^error: .*nonexistent.jsonl: cannot open" "$T/err"; then
    ok "missing job file: one error line"; else bad "missing job file" "rc $rc: $(cat "$T/err")"; fi
"$SD" batch "$T/jobs.jsonl" -o "$T/x" -m "$T/no-model" --size "$SIZE" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "^error: .*no-model" "$T/err" && [ ! -e "$T/x" ]; then
    ok "missing model: error, no output folder"; else bad "missing model" "rc $rc: $(cat "$T/err")"; fi

printf '{"prompt": "a"}\n{"prompt": "b", "sampler": "ddim", "scheduler": "karras"}\n' >"$T/model-bad.jsonl"
"$SD" batch "$T/model-bad.jsonl" -o "$T/mb" "${COMMON[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "^error: .*model-bad.jsonl:2: .*karras" "$T/err" && [ -z "$(find "$T/mb" -name '*.png' 2>/dev/null)" ]; then
    ok "a combination the model refuses: its line reported before rendering"; else bad "model check" "rc $rc: $(cat "$T/err")"; fi

"$SD" batch "$T/jobs.jsonl" --check "${COMMON[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && grep -q "3 jobs, $N images; ok" "$T/out"; then ok "--check of a good file"; else bad "--check" "rc $rc: $(cat "$T/out" "$T/err")"; fi

printf '{"prompt": "a"}\n{"prompt": "b", "output": "00000-42-a.png"}\n' >"$T/clash.jsonl"
"$SD" batch "$T/clash.jsonl" --check >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'clash.jsonl:2: image 1 would be written to "00000-42-a.png", like image 0 of line 1' "$T/err"; then
    ok "two images with one name rejected"; else bad "name collision" "rc $rc: $(cat "$T/err")"; fi

# ---- shards: the union of --list over N shards is the whole list, without overlap ----
"$SD" batch "$T/jobs.jsonl" --list "${COMMON[@]}" >"$T/whole.tsv"
for n in 1 3 4 11; do
    : >"$T/union.tsv"
    for ((i = 0; i < n; i++)); do "$SD" batch "$T/jobs.jsonl" --list --shard "$i/$n" "${COMMON[@]}" >>"$T/union.tsv"; done
    if [ "$(grep -c '' "$T/whole.tsv")" -eq $N ] && cmp -s "$T/whole.tsv" "$T/union.tsv"; then ok "--list over $n shards is the whole list"
    else bad "$n shards" "$(diff "$T/whole.tsv" "$T/union.tsv" | head -5)"; fi
done
"$SD" batch "$T/jobs.jsonl" --list --shard 3/3 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "must be 0..2" "$T/err"; then ok "--shard 3/3 is refused (shards count from 0)"; else bad "--shard 3/3" "rc $rc"; fi
"$SD" batch "$T/jobs.jsonl" --list --shard 1/99999999999 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "shard count must be from 1 to 1000000" "$T/err"; then ok "--shard 1/99999999999 says the count's range"; else bad "--shard 1/99999999999" "rc $rc: $(cat "$T/err")"; fi
"$SD" batch "$T/jobs.jsonl" --list --shard-cuont 2 >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'did you mean --shard-count?' "$T/err"; then ok "a misspelt batch flag gets a suggestion"; else bad "--shard-cuont" "rc $rc: $(cat "$T/err")"; fi
# sides past the library's 8192 are refused by the job check, naming line and key, before any model loads
printf '{"prompt":"a","width":16384}\n' >"$T/wide.jsonl"
"$SD" batch "$T/wide.jsonl" --check >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q 'wide.jsonl:1' "$T/err" && grep -q '8192' "$T/err"; then ok "a job width of 16384 is refused by --check (the library's limit is 8192)"
else bad "width 16384 in a job" "rc $rc: $(cat "$T/err")"; fi

# ---- a whole run, then a re-run that renders nothing ----
"$SD" batch "$T/jobs.jsonl" -o "$T/a" "${COMMON[@]}" --contact-sheet "$T/a/sheet.png" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] || bad "first run" "rc $rc: $(tail -3 "$T/err")"
check_dir "first run: $N images, manifest complete" "$T/a" $N
if is_png "$T/a/sheet.png"; then ok "contact sheet written"; else bad "contact sheet" "no PNG"; fi
md5_before=$(cat "$T/a"/manifest.jsonl "$T/a"/*.png | md5sum)
"$SD" batch "$T/jobs.jsonl" -o "$T/a" -m "$MODEL" --size "$SIZE" --steps 2 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && grep -q "$N already done, 0 to render" "$T/err" && [ "$(cat "$T/a"/manifest.jsonl "$T/a"/*.png | md5sum)" = "$md5_before" ]; then
    ok "re-run renders nothing and changes nothing"; else bad "re-run" "rc $rc: $(cat "$T/err")"; fi

# ---- killed right after an image is written (under its temp name), before its manifest line ----
{ SD_BATCH_TEST_KILL=after-save:3 "$SD" batch "$T/jobs.jsonl" -o "$T/b" "${COMMON[@]}"; rc=$?; } 2>/dev/null
if [ $rc -eq 137 ] && [ "$(grep -c '' "$T/b/manifest.jsonl")" -eq 2 ]; then ok "kill -9 after the 3rd PNG is written: 2 manifest lines"
else bad "kill after save" "rc $rc, $(grep -c '' "$T/b/manifest.jsonl") lines"; fi
"$SD" batch "$T/jobs.jsonl" -o "$T/b" "${COMMON[@]}" 2>"$T/err" || bad "resume after kill" "$(cat "$T/err")"
check_dir "resume after kill -9 after a save" "$T/b" $N
if cmp -s <(cd "$T/a" && sha256sum $(find . -name '*.png' ! -name 'sheet*' | sort)) <(cd "$T/b" && sha256sum $(find . -name '*.png' | sort)); then
    ok "resumed images are the same bytes as an uninterrupted run"; else bad "resumed bytes" "differ"; fi

# ---- killed in the middle of a manifest line ----
{ SD_BATCH_TEST_KILL=torn-manifest:2 "$SD" batch "$T/jobs.jsonl" -o "$T/c" "${COMMON[@]}"; rc=$?; } 2>/dev/null
if [ $rc -eq 137 ] && [ -n "$(tail -c 1 "$T/c/manifest.jsonl")" ]; then ok "kill -9 mid manifest line leaves a torn line"
else bad "torn manifest" "rc $rc"; fi
"$SD" batch "$T/jobs.jsonl" -o "$T/c" "${COMMON[@]}" 2>"$T/err" || bad "resume after torn line" "$(cat "$T/err")"
check_dir "resume after a torn manifest line" "$T/c" $N

# ---- kill -9 at a moment the test does not choose, and Ctrl-C ----
cat >"$T/many.txt" <<'EOF'
a {red|green} {circle|square} on a black background
EOF
M=8
"$SD" batch "$T/many.txt" -o "$T/d" "${COMMON[@]}" --count 2 2>/dev/null &
pid=$!
for _ in $(seq 1 600); do [ "$(lines "$T/d/manifest.jsonl")" -ge 3 ] && break; sleep 0.02; done
{ kill -9 $pid; wait $pid; } 2>/dev/null
done_at_kill=$(grep -c '' "$T/d/manifest.jsonl")
"$SD" batch "$T/many.txt" -o "$T/d" "${COMMON[@]}" --count 2 2>"$T/err" || bad "resume after random kill" "$(cat "$T/err")"
check_dir "resume after kill -9 at $done_at_kill of $M images" "$T/d" $M

"$SD" batch "$T/many.txt" -o "$T/e" -m "$MODEL" --size "$SIZE" --steps 2 --count 2 2>"$T/err" &
pid=$!
for _ in $(seq 1 600); do [ "$(lines "$T/e/manifest.jsonl")" -ge 2 ] && break; sleep 0.02; done
kill -INT $pid; wait $pid; rc=$?
n_int=$(lines "$T/e/manifest.jsonl")
# The signal must have landed mid-run: exit 130, the run's own count of what it rendered, fewer than all M images
# listed, and a resume that renders exactly the rest. A signal after the last image fails here.
if [ $rc -eq 130 ] && [ "$n_int" -lt $M ] && grep -q "^interrupted: $n_int images rendered; run the same command again to resume" "$T/err"; then
    ok "Ctrl-C mid-run stops cleanly (exit 130 after $n_int of $M images)"
else bad "Ctrl-C" "rc $rc, $n_int of $M images in the manifest: $(tail -2 "$T/err")"; fi
"$SD" batch "$T/many.txt" -o "$T/e" -m "$MODEL" --size "$SIZE" --steps 2 --count 2 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && grep -q "$n_int already done, $((M - n_int)) to render" "$T/err"; then
    ok "resume after Ctrl-C renders the $((M - n_int)) images left"; else bad "resume after Ctrl-C" "rc $rc: $(cat "$T/err")"; fi
check_dir "resume after Ctrl-C" "$T/e" $M

# ---- three shard processes at once into one folder, then an unsharded run finds everything done ----
for i in 0 1 2; do "$SD" batch "$T/many.txt" -o "$T/f" "${COMMON[@]}" --count 2 --shard $i/3 & done
wait
if [ "$(ls "$T/f"/manifest.shard-*-of-3.jsonl | wc -l)" -eq 3 ]; then ok "one manifest per shard"; else bad "shard manifests" "$(ls "$T/f")"; fi
check_dir "3 shards in parallel add up to the whole" "$T/f" $M
"$SD" batch "$T/many.txt" -o "$T/f" -m "$MODEL" --size "$SIZE" --steps 2 --count 2 2>"$T/err"
if grep -q "$M already done, 0 to render" "$T/err"; then ok "unsharded run reads the shard manifests"; else bad "after shards" "$(cat "$T/err")"; fi

# ---- sd batch merge: the shards of $T/f checked against the job file, one manifest written ----
MF=("$SD" batch merge)
JOBF=("$T/many.txt" "${COMMON[@]}" --count 2)   # the job file and the flags the batch ran with
cp -a "$T/f" "$T/fm"
"${MF[@]}" "$T/f" "${JOBF[@]}" --contact-sheet "$T/f/all-sheet.png" >"$T/out" 2>"$T/err"; rc=$?
cat "$T/f"/manifest.shard-*.jsonl | sort >"$T/shards.sorted"
if [ $rc -eq 0 ] && [ "$(grep -c '' "$T/f/merged.jsonl")" -eq $M ] && cmp -s <(sort "$T/f/merged.jsonl") "$T/shards.sorted" &&
   [ "$(grep -o '"index":[0-9]*' "$T/f/merged.jsonl" | tr -d '"index:' | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 " ] && is_png "$T/f/all-sheet.png"; then
    ok "merge of 3 complete shards: every shard line once, in image order, and a contact sheet"
else bad "merge complete" "rc $rc: $(cat "$T/err")"; fi
sum=$(sha256sum <"$T/f/merged.jsonl")
refused "merge does not replace its manifest unless asked" "merged.jsonl: already exists" "${MF[@]}" "$T/f" "${JOBF[@]}"
[ "$(sha256sum <"$T/f/merged.jsonl")" = "$sum" ] || bad "merged.jsonl kept" "changed"
"${MF[@]}" "$T/f" "${JOBF[@]}" --overwrite -q >"$T/out" 2>"$T/err" && [ "$(sha256sum <"$T/f/merged.jsonl")" = "$sum" ] &&
    ok "... and with --overwrite writes the same bytes" || bad "merge --overwrite" "$(cat "$T/err")"
# shards of 8 images over 3: 0-1, 2-4, 5-7. Delete image 0 (shard 0), corrupt image 6 (shard 2).
f0=$(grep -o '"index":0,"file":"[^"]*"' "$T/fm/manifest.shard-0-of-3.jsonl" | sed -E 's/.*"file":"([^"]*)"/\1/')
f6=$(grep -o '"index":6,"file":"[^"]*"' "$T/fm/manifest.shard-2-of-3.jsonl" | sed -E 's/.*"file":"([^"]*)"/\1/')
rm "$T/fm/$f0"; printf 'x' >>"$T/fm/$f6"
"${MF[@]}" "$T/fm" "${JOBF[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "$f0: image 0 missing (the manifest lists it, the file is gone), shard 0/3" "$T/err" &&
   grep -q "$f6: image 6 corrupt (the file's SHA-256 is not the manifest's), shard 2/3" "$T/err" &&
   grep -q "shard 0/3 must run again (--shard 0/3)" "$T/err" && grep -q "shard 2/3 must run again" "$T/err" &&
   ! grep -q "shard 1/3 must" "$T/err" && grep -q "incomplete: 6 images ok, 1 missing, 1 corrupt; nothing written" "$T/err" &&
   [ ! -e "$T/fm/merged.jsonl" ]; then ok "merge names a deleted and a corrupt image and the shards to rerun; writes nothing"
else bad "merge incomplete" "rc $rc: $(cat "$T/err")"; fi
# the advice works: move the corrupt file away, rerun the two shards, merge: complete, the same bytes as before
mv "$T/fm/$f6" "$T/corrupt.png"
for i in 0 2; do "$SD" batch "${JOBF[@]}" -o "$T/fm" --shard $i/3 2>/dev/null; done
"${MF[@]}" "$T/fm" "${JOBF[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && cmp -s <(sort "$T/fm/merged.jsonl" | sed -E 's/"timings".*//') <(sed -E 's/"timings".*//' "$T/shards.sorted") &&
   cmp -s <(cd "$T/f" && sha256sum $(cut -d'"' -f6 <"$T/f/merged.jsonl")) <(cd "$T/fm" && sha256sum $(cut -d'"' -f6 <"$T/fm/merged.jsonl")); then
    ok "rerunning the named shards completes the merge with the same images"
else bad "merge after rerun" "rc $rc: $(cat "$T/err")"; fi
# a duplicated shard: complete, every image once in the merged manifest, the duplicates named
cp -a "$T/f" "$T/fd"; rm "$T/fd/merged.jsonl"
cp "$T/fd/manifest.shard-1-of-3.jsonl" "$T/fd/manifest.shard-1-of-3.copy.jsonl"
"${MF[@]}" "$T/fd" "${JOBF[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c 'is listed 2 times: manifest.shard-1-of-3.copy.jsonl manifest.shard-1-of-3.jsonl' "$T/err")" -eq 3 ] &&
   cmp -s "$T/fd/merged.jsonl" "$T/f/merged.jsonl" && grep -q "8 images from 4 manifests, 3 listed more than once" "$T/out"; then
    ok "a duplicated shard manifest: its 3 images named, each once in the merge"
else bad "duplicate shard" "rc $rc: $(cat "$T/out" "$T/err")"; fi
# a shard that never ran: with the job file its images are named; without it, its manifest is missed
cp -a "$T/f" "$T/fn"; rm "$T/fn/merged.jsonl" "$T/fn/manifest.shard-1-of-3.jsonl"
"${MF[@]}" "$T/fn" "${JOBF[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c 'missing (no manifest line), shard 1/3' "$T/err")" -eq 3 ] && grep -q "shard 1/3 must run again" "$T/err"; then
    ok "a shard that never ran: its 3 images missing"; else bad "shard never ran" "rc $rc: $(cat "$T/err")"; fi
"${MF[@]}" "$T/fn" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "no manifest.shard-1-of-3.jsonl" "$T/err" && grep -q "shard 1/3 must run again" "$T/err" && [ ! -e "$T/fn/merged.jsonl" ]; then
    ok "without the job file: the absent shard manifest is named"; else bad "merge without jobs" "rc $rc: $(cat "$T/err")"; fi
"${MF[@]}" "$T/f" --manifest "$T/f/nojobs.jsonl" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && cmp -s <(sort "$T/f/nojobs.jsonl") "$T/shards.sorted" && ok "without the job file: a complete folder merges" ||
    bad "merge without jobs, complete" "rc $rc: $(cat "$T/err")"
refused "merge of a folder that does not exist" "no such folder" "${MF[@]}" "$T/refused" "${JOBF[@]}"
refused "merge with -o" "name the merged manifest with --manifest" "${MF[@]}" "$T/f" -o "$T/refused"
# a merged manifest named manifest*.jsonl inside the folder is not read back as one more shard by the next merge
"${MF[@]}" "$T/f" "${JOBF[@]}" --manifest "$T/f/manifest.all.jsonl" >/dev/null 2>&1
"${MF[@]}" "$T/f" "${JOBF[@]}" --manifest "$T/f/manifest.all.jsonl" --overwrite >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && [ ! -s "$T/err" ] && grep -q "8 images from 3 manifests" "$T/out" && cmp -s "$T/f/manifest.all.jsonl" "$T/f/merged.jsonl" &&
    ok "merge into DIR/manifest.all.jsonl, again: its own output is not a shard" || bad "merge into DIR" "rc $rc: $(cat "$T/out" "$T/err")"

# ---- --shard auto in a Kubernetes Indexed Job: JOB_COMPLETION_INDEX with the count from --shard-count ----
for i in 0 1 2; do (unset SLURM_ARRAY_TASK_ID; JOB_COMPLETION_INDEX=$i "$SD" batch "${JOBF[@]}" -o "$T/k8s" --shard auto --shard-count 3) & done
wait
if [ "$(ls "$T/k8s"/manifest.shard-*-of-3.jsonl | wc -l)" -eq 3 ] && "${MF[@]}" "$T/k8s" "${JOBF[@]}" >"$T/out" 2>"$T/err" &&
   cmp -s <(cd "$T/f" && sha256sum $(cut -d'"' -f6 <"$T/f/merged.jsonl")) <(cd "$T/k8s" && sha256sum $(cut -d'"' -f6 <"$T/k8s/merged.jsonl")); then
    ok "3 processes with JOB_COMPLETION_INDEX 0..2 and --shard-count 3 merge into the same images as --shard I/3"
else bad "JOB_COMPLETION_INDEX" "$(ls "$T/k8s"; cat "$T/err")"; fi
refused "--shard auto with no scheduler in the environment" "no scheduler index in the environment" \
    env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX "$SD" batch "${JOBF[@]}" -o "$T/refused" --shard auto --shard-count 3
refused "JOB_COMPLETION_INDEX without --shard-count" "Kubernetes does not export the count: add --shard-count N" \
    env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=1 "$SD" batch "${JOBF[@]}" -o "$T/refused" --shard auto
refused "JOB_COMPLETION_INDEX not below --shard-count" "index 3 is not below the shard count 3" \
    env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=3 "$SD" batch "${JOBF[@]}" -o "$T/refused" --shard auto --shard-count 3
refused "Slurm and Kubernetes naming different shards" "Slurm says shard 1 of 4 but JOB_COMPLETION_INDEX says 2" \
    env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=4 JOB_COMPLETION_INDEX=2 "$SD" batch "${JOBF[@]}" -o "$T/refused" --shard auto
refused "--shard-count that disagrees with the Slurm array" "--shard-count 3, but the Slurm array has 4 tasks" \
    env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=4 "$SD" batch "${JOBF[@]}" -o "$T/refused" --shard auto --shard-count 3
refused "--shard-count without --shard" "--shard-count goes with --shard auto" "$SD" batch "${JOBF[@]}" -o "$T/refused" --shard-count 3

# ---- samples/cluster/k8s-indexed-job.yaml parses as YAML (libyaml) and asks for what sd needs ----
K8S=samples/cluster/k8s-indexed-job.yaml
YP=${YAML_PATHS:-build/tests/yaml_paths}
if "$YP" "$K8S" >"$T/k8s.paths" 2>"$T/err"; then
    n=$(sed -n 's/^spec\.completions=//p' "$T/k8s.paths")
    cmd=$(grep '^spec\.template\.spec\.containers\.0\.command\.' "$T/k8s.paths" | cut -d= -f2- | tr '\n' ' ')
    if grep -qx 'kind=Job' "$T/k8s.paths" && grep -qx 'spec.completionMode=Indexed' "$T/k8s.paths" && [ -n "$n" ] &&
       [[ "$cmd" == "sd batch "*" --shard auto --shard-count $n "* ]] && grep -q '^spec\.template\.spec\.containers\.0\.resources\.limits\.nvidia\.com/gpu=1$' "$T/k8s.paths"; then
        ok "$K8S: an Indexed Job of $n completions running sd batch --shard auto --shard-count $n, one GPU each"
    else bad "$K8S" "unexpected content: $cmd"; fi
else bad "$K8S" "not YAML: $(cat "$T/err")"; fi

# ---- batch size packs consecutive seeds into one call (pixels compared in tests/test_batch_e2e.c) ----
"$SD" batch "$T/jobs.jsonl" -o "$T/g" "${COMMON[@]}" --batch-size 3 2>"$T/err" || bad "batch size 3" "$(cat "$T/err")"
if [ "$(grep -c '"images_in_call":3' "$T/g/manifest.jsonl")" -eq 6 ]; then ok "batch size 3 packs the 3 seeds of each variation"
else bad "batch size 3" "$(grep -o '"images_in_call":[0-9]*' "$T/g/manifest.jsonl" | sort | uniq -c)"; fi
check_dir "batch size 3: all images" "$T/g" $N

# ---- a file the batch did not write is never overwritten ----
mkdir -p "$T/h"; echo "my notes" >"$T/h/$(sed -n 1p "$T/whole.tsv" | cut -f2)"
"$SD" batch "$T/jobs.jsonl" -o "$T/h" "${COMMON[@]}" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "was not written by sd" "$T/err" && [ "$(cat "$T/h/$(sed -n 1p "$T/whole.tsv" | cut -f2)")" = "my notes" ]; then
    ok "a foreign file is left alone"; else bad "foreign file" "rc $rc: $(cat "$T/err")"; fi

# ... not even an AUTOMATIC1111 PNG with the very prompt and seed (hostile-repro a1111-foreign.png): only a file
# with a manifest line of its SHA-256 is sd's own
printf '{"prompt": "a red star", "seed": 42}\n' >"$T/star.jsonl"
mkdir -p "$T/i"; cp $H/a1111-foreign.png "$T/i/00000-42-a-red-star.png"
sum=$(sha256sum <"$T/i/00000-42-a-red-star.png")
refused "an A1111 PNG where a batch image goes is not taken for sd's own" "00000-42-a-red-star.png exists and was not written by sd" \
    "$SD" batch "$T/star.jsonl" -o "$T/i" "${COMMON[@]}"
[ "$(sha256sum <"$T/i/00000-42-a-red-star.png")" = "$sum" ] && [ "$(ls -A "$T/i")" = "00000-42-a-red-star.png" ] &&
    ok "... it is untouched and nothing else was written" || bad "foreign PNG" "$(ls -A "$T/i")"
"$SD" batch "$T/star.jsonl" -o "$T/i" "${COMMON[@]}" --overwrite 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && [ "$(sha256sum <"$T/i/00000-42-a-red-star.png")" != "$sum" ] && check_dir "--overwrite replaces it (and records it)" "$T/i" 1 ||
    bad "--overwrite" "rc $rc: $(cat "$T/err")"
# an image of sd's own that was changed since is no longer its own either
printf 'x' >>"$T/i/00000-42-a-red-star.png"
refused "an image edited since sd wrote it is left alone" "(or was changed since)" "$SD" batch "$T/star.jsonl" -o "$T/i" "${COMMON[@]}" --steps 3
mkdir -p "$T/l/00000-42-a-red-star.png"
refused "a folder where an image goes is refused, even with --overwrite" "00000-42-a-red-star.png: is in the way and is not a regular file" \
    "$SD" batch "$T/star.jsonl" -o "$T/l" "${COMMON[@]}" --overwrite
# an image whose parameters changed is sd's to replace
"$SD" batch "$T/star.jsonl" -o "$T/j" "${COMMON[@]}" 2>/dev/null
"$SD" batch "$T/star.jsonl" -o "$T/j" "${COMMON[@]}" --steps 3 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && [ "$(grep -c '' "$T/j/manifest.jsonl")" -eq 2 ] && ok "sd's own image re-rendered with new parameters" || bad "re-render own" "rc $rc: $(cat "$T/err")"

# ---- a manifest that is not a regular file, or holds a line sd did not write, is refused before the model loads ----
mkdir -p "$T/ml"; printf 'important notes\n' >"$T/notes.txt"; ln -s ../notes.txt "$T/ml/manifest.jsonl"
refused "a symlinked manifest is refused, not appended through" "ml/manifest.jsonl: is a symbolic link" \
    "$SD" batch "$T/star.jsonl" -o "$T/ml" "${COMMON[@]}"
[ "$(cat "$T/notes.txt")" = "important notes" ] && [ "$(ls -A "$T/ml")" = "manifest.jsonl" ] &&
    ok "... the link's target is untouched, nothing rendered" || bad "symlinked manifest" "$(ls -A "$T/ml"; cat "$T/notes.txt")"
mkdir -p "$T/mf" "$T/mf2"; mkfifo "$T/mf/manifest.jsonl" "$T/mf2/manifest.shard-0-of-2.jsonl"
refused "a FIFO named manifest.jsonl is refused, not waited on" "mf/manifest.jsonl: is a FIFO" \
    timeout 20 "$SD" batch "$T/star.jsonl" -o "$T/mf" "${COMMON[@]}"
refused "merge: a FIFO shard manifest is refused, not waited on" "manifest.shard-0-of-2.jsonl: is a FIFO" \
    timeout 20 "$SD" batch merge "$T/mf2" "$T/star.jsonl" "${COMMON[@]}"
mkdir -p "$T/mg"; printf 'garbage\n{"x":1}\n' >"$T/mg/manifest.jsonl"
refused "a manifest line sd did not write is an error naming file:line" "mg/manifest.jsonl:1: not a manifest line" \
    "$SD" batch "$T/star.jsonl" -o "$T/mg" "${COMMON[@]}"
cp -a "$T/f" "$T/fg"; rm -f "$T/fg"/merged.jsonl "$T/fg"/manifest.all.jsonl "$T/fg"/nojobs.jsonl
sed -i '1a {"x":1}' "$T/fg/manifest.shard-1-of-3.jsonl"
refused "merge: a manifest line sd did not write is an error naming file:line" "manifest.shard-1-of-3.jsonl:2: not a manifest line" \
    "$SD" batch merge "$T/fg" "${JOBF[@]}"

# ---- the contact sheet may not replace one of the batch's own files, even with --overwrite: refused before the model loads ----
refused "--contact-sheet where an image of the batch goes, even with --overwrite" "is where image 0 of this batch goes" \
    "$SD" batch "$T/star.jsonl" -o "$T/refused" "${COMMON[@]}" --contact-sheet "$T/refused/00000-42-a-red-star.png" --overwrite
refused "--contact-sheet on the batch's manifest" "is a manifest of the batch" \
    "$SD" batch "$T/star.jsonl" -o "$T/refused" "${COMMON[@]}" --contact-sheet "$T/refused/manifest.jsonl"
sum=$(cat "$T/j"/* | sha256sum)
refused "--contact-sheet spelled otherwise (./, ..) on a rendered image of the folder" "is where image 0 of this batch goes" \
    "$SD" batch "$T/star.jsonl" -o "$T/j" "${COMMON[@]}" --steps 3 --contact-sheet "$T/j/./x/../00000-42-a-red-star.png" --overwrite
[ "$(cat "$T/j"/* | sha256sum)" = "$sum" ] && ok "... the image and the manifest are untouched" || bad "sheet clash" "$T/j changed"
img0=$(sed -n 1p "$T/f/merged.jsonl" | cut -d'"' -f6)
refused "merge: --contact-sheet on an image of the run" "is where image 0 of this batch goes" \
    "${MF[@]}" "$T/f" "${JOBF[@]}" --contact-sheet "$T/f/$img0" --overwrite
refused "merge: --manifest on an image of the run" "is where image 0 of this batch goes" \
    "${MF[@]}" "$T/f" "${JOBF[@]}" --manifest "$T/f/$img0" --overwrite
is_png "$T/f/$img0" && ok "... the image is untouched" || bad "merge clash" "$img0 is no PNG"

# ---- a job's images are read before anything renders: a mask of another size than its init image fails --check ----
cp samples/images/red-star.png "$T/init.png"; cp tests/data/batch/mask-7x9.png "$T/mask7x9.png"
printf '{"prompt": "a", "steps": 1}\n{"prompt": "b", "steps": 1, "init_image": "%s", "mask": "%s"}\n' "$T/init.png" "$T/mask7x9.png" >"$T/mm.jsonl"
needle="mm.jsonl:2: mask \"$T/mask7x9.png\" is 7x9 but init_image \"$T/init.png\" is 128x128"
refused "--check reads the images: a mask whose size is not the init image's, named with its line" "$needle" \
    "$SD" batch "$T/mm.jsonl" -o "$T/refused" "${COMMON[@]}" --check
refused "... and so does --check without a model" "$needle" "$SD" batch "$T/mm.jsonl" -o "$T/refused" --check
refused "... and the run, before the model loads (no image of line 1 either)" "$needle" \
    "$SD" batch "$T/mm.jsonl" -o "$T/refused" -m "$T/no-model" --size "$SIZE" -q

# ---- "a\u0000b" would reach the model (and the manifest) as "a": refused with its line and key ----
printf '{"prompt": "a red star"}\n{"prompt": "a\\u0000b"}\n' >"$T/nul.jsonl"
refused "a \\u0000 in a job's string is refused, naming line and key" 'nul.jsonl:2: "prompt": a string holds \u0000' \
    "$SD" batch "$T/nul.jsonl" -o "$T/refused" "${COMMON[@]}"

# ---- killed after the manifest line, before the rename: the line is there, the image not yet ----
{ SD_BATCH_TEST_KILL=before-rename:2 "$SD" batch "$T/jobs.jsonl" -o "$T/k" "${COMMON[@]}"; rc=$?; } 2>/dev/null
n_png=$(find "$T/k" -name '*.png' ! -name '.*' | wc -l)
if [ $rc -eq 137 ] && [ "$(grep -c '' "$T/k/manifest.jsonl")" -eq 2 ] && [ "$n_png" -eq 1 ]; then ok "kill -9 before a rename: 2 lines, 1 image"
else bad "kill before rename" "rc $rc, $(grep -c '' "$T/k/manifest.jsonl") lines, $n_png images"; fi
"$SD" batch "$T/jobs.jsonl" -o "$T/k" "${COMMON[@]}" 2>"$T/err" || bad "resume after kill before rename" "$(cat "$T/err")"
check_dir "resume after kill -9 before a rename: no second line for the image" "$T/k" $N

echo "$label: $pass passed, $fail failed"
[ $fail -eq 0 ]
