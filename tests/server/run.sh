#!/usr/bin/env bash
# run.sh — the tests of `sd serve`, on 127.0.0.1 only. Two parts, one tally line each (tests/run.sh reads them):
#   run.sh http SD      test_http.py with the system python3 (standard library only): always runs
#   run.sh clients SD   the real clients from PyPI, in a venv made here under build/server-venv from requirements.txt:
#                       webuiapi and openai (test_clients.py), the page in headless Chromium (test_page.py, Debian's
#                       chromium + chromium-driver), schemathesis against /openapi.json (test_schema.py). When pip
#                       cannot reach the package registry this prints "SKIP: no network/PyPI" and runs none of them;
#                       any other failure to install is a failure.
set -u
part=${1:?usage: run.sh http|clients SD}
SD=${2:-build/sd}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
label=${TEST_LABEL:-server-$part}
export SD_BIN=$(cd "$(dirname "$SD")" && pwd)/$(basename "$SD")
export SD_SERVER_WORK=$root/build/server-test/$part
export PYTHONDONTWRITEBYTECODE=1
rm -rf "$SD_SERVER_WORK" && mkdir -p "$SD_SERVER_WORK"
passed=0; failed=0

# runs one python test script; adds its tally; fails a script that ran fewer than `min` cases or crashed
run_py() {
    local py=$1 script=$2 min=$3 log
    log=$(mktemp)
    (cd "$here" && TEST_LABEL=part "$py" -u "$script") 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]} tally
    tally=$(grep -E "^part: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$tally" ]; then echo "FAIL $script: exited with status $rc without its tally"; failed=$((failed + 1)); return; fi
    local p f
    p=$(sed -E 's/part: ([0-9]+) passed.*/\1/' <<<"$tally"); f=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$tally")
    passed=$((passed + p)); failed=$((failed + f))
    if [ $((p + f)) -lt "$min" ]; then echo "FAIL $script: ran $((p + f)) cases, expected at least $min"; failed=$((failed + 1)); fi
    if [ "$f" -eq 0 ] && [ "$rc" -ne 0 ]; then echo "FAIL $script: exit status $rc after a clean tally"; failed=$((failed + 1)); fi
}

if ! command -v python3 >/dev/null; then
    echo "FAIL python3: not installed (tools/install_deps.sh installs python3 and python3-venv)"
    echo "$label: 0 passed, 1 failed"; exit 1
fi

if [ "$part" = http ]; then
    run_py python3 test_http.py 20
else
    venv=$root/build/server-venv
    stamp="$(sha256sum "$here/requirements.txt" | cut -c1-16) $(python3 -V 2>&1)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$venv"
        echo "server: installing the test clients into build/server-venv (tests/server/requirements.txt)"
        if python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"; then
            echo "$stamp" > "$venv/.stamp"
        else
            probe=$(mktemp -d)
            if [ -x "$venv/bin/pip" ] && ! "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-cache-dir -d "$probe" pip >/dev/null 2>&1; then
                rm -rf "$probe" "$venv"
                echo "SKIP: no network/PyPI: pip cannot reach the package registry, so the webuiapi, openai, browser and schemathesis tests of sd serve did not run"
                echo "$label: 0 passed, 0 failed"; exit 0
            fi
            rm -rf "$probe" "$venv"
            echo "FAIL server-venv: pip reaches the registry but could not install tests/server/requirements.txt"
            echo "$label: 0 passed, 1 failed"; exit 1
        fi
    fi
    for bin in chromium chromedriver; do
        command -v $bin >/dev/null || { echo "FAIL $bin: not installed (tools/install_deps.sh installs chromium and chromium-driver)"; failed=$((failed + 1)); }
    done
    run_py "$venv/bin/python" test_clients.py 6
    run_py "$venv/bin/python" test_page.py 3
    run_py "$venv/bin/python" test_schema.py 2
fi
echo "$label: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
