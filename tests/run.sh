#!/usr/bin/env bash
# run.sh — runs test binaries (each "label=command ..." or a path), adds up their tallies and prints
# the one closing line "N passed, M failed". A binary that dies without its tally line counts as one failure.
set -u
# Idle OpenMP threads sleep instead of spinning: test machines are shared and oversubscribed.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
passed=0; failed=0; crashed=()
for spec in "$@"; do
    if [[ "$spec" == *=* ]]; then label=${spec%%=*}; cmd=${spec#*=}; else label=$(basename "${spec%% *}"); cmd=$spec; fi
    log=$(mktemp)
    TEST_LABEL=$label bash -c "$cmd" 2>&1 | tee "$log"
    tally=$(grep -E "^$label: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
    if [ -n "$tally" ]; then
        p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$tally")
        f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$tally")
        passed=$((passed + p)); failed=$((failed + f))
    else
        echo "FAIL $label: exited without its tally (crash?)"
        failed=$((failed + 1)); crashed+=("$label")
    fi
    rm -f "$log"
done
[ ${#crashed[@]} -eq 0 ] || echo "crashed: ${crashed[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
