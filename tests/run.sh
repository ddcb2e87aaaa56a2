#!/usr/bin/env bash
# run.sh — runs test binaries and prints the one closing line "N passed, M failed".
# Each argument is "label:MIN=command ...": the command must print its tally "label: P passed, F failed", exit with
# status 0 exactly when F is 0, and run at least MIN test cases (so a renamed or deleted test, or a filter that
# matches nothing, cannot drop out silently). "label=command" and a plain path mean MIN 1 (for runs by hand).
# Each of these counts as one more failure: no tally (a crash), an exit status that disagrees with the tally (a crash
# at exit, LeakSanitizer's report after the tally), fewer than MIN cases run, and each sanitizer report file that a
# process of the run left in $SAN_LOG_DIR (set by `make asan-test`; the reports of a CLI whose stderr a shell test
# discards land there too).
set -u
# Idle OpenMP threads sleep instead of spinning: test machines are shared and oversubscribed.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
passed=0; failed=0; broken=()
for spec in "$@"; do
    min=1
    if [[ "$spec" == *=* ]]; then label=${spec%%=*}; cmd=${spec#*=}; else label=$(basename "${spec%% *}"); cmd=$spec; fi
    if [[ "$label" == *:* ]]; then min=${label##*:}; label=${label%:*}; fi
    if ! [[ "$min" =~ ^[0-9]+$ ]]; then echo "run.sh: bad minimum in \"$spec\""; exit 2; fi
    log=$(mktemp)
    san_opts=()
    if [ -n "${SAN_LOG_DIR:-}" ]; then
        # every sanitizer report of this run, from the binary and from any process it starts, lands in a file
        mkdir -p "$SAN_LOG_DIR"; rm -f "$SAN_LOG_DIR/$label".*
        san_opts=(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_LOG_DIR/$label"
                  UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SAN_LOG_DIR/$label")
    fi
    env "${san_opts[@]}" TEST_LABEL="$label" bash -c "$cmd" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    problems=()
    tally=$(grep -E "^$label: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
    if [ -n "$tally" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$tally")
        f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$tally")
        passed=$((passed + p)); failed=$((failed + f))
        [ $((p + f)) -ge "$min" ] || problems+=("ran $((p + f)) tests, expected at least $min")
        if [ "$f" -eq 0 ] && [ "$rc" -ne 0 ]; then problems+=("exit status $rc after a clean tally"); fi
        if [ "$f" -ne 0 ] && [ "$rc" -eq 0 ]; then problems+=("exit status 0 with $f failures"); fi
    else
        problems+=("exited with status $rc without its tally (crash?)")
    fi
    if [ -n "${SAN_LOG_DIR:-}" ]; then
        for r in "$SAN_LOG_DIR/$label".*; do
            [ -e "$r" ] || continue
            cat "$r"
            problems+=("sanitizer report $r")
        done
    fi
    for pr in "${problems[@]}"; do echo "FAIL $label: $pr"; failed=$((failed + 1)); done
    [ ${#problems[@]} -eq 0 ] || broken+=("$label")
    rm -f "$log"
done
[ ${#broken[@]} -eq 0 ] || echo "broken runs: ${broken[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
