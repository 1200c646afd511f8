#!/usr/bin/env bash
# The end-to-end suite against the composed stack: the same scenarios as on the embedded
# stack (tests/tests/e2e/scenarios.rs), then the faults only compose can have
# (compose_faults.rs: a container stopped and started, a paused mock, a mock cut off from
# the network, the Net-entreprises mock cut off while a DSN deposit is in flight), one test
# at a time on one stack. compose-smoke.sh brings the stack up
# (images built without pulling anything) and checks it first; the stack is torn down at
# the end whatever happens.
#
# It runs twice, once per variant of the compose file, from a clean state each time
# (`down -v` between): SQLite (docker-compose.yml alone), then PostgreSQL (with
# docker-compose.postgres.yml). The image is built once, for the first.
# IEA_COMPOSE_VARIANTS="sqlite" (or "postgres") runs one only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export IEA_SMOKE_PROJECT=${IEA_SMOKE_PROJECT:-iea-smoke}
export IEA_SMOKE_DATA=${IEA_SMOKE_DATA:-$ROOT/target/compose-smoke}
VARIANTS=${IEA_COMPOSE_VARIANTS:-sqlite postgres}

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    COMPOSE=(docker-compose)
fi
teardown() {
    # Both files: the PostgreSQL variant's service and volume go too.
    IEA_COMPOSE_DATA=$IEA_SMOKE_DATA "${COMPOSE[@]}" -p "$IEA_SMOKE_PROJECT" \
        -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.postgres.yml" \
        down -v --remove-orphans >/dev/null 2>&1 || true
}
trap teardown EXIT

now() { date +%s.%N; }
TIMES=()
build=1
for variant in $VARIANTS; do
    echo "== compose suite on $variant"
    t0=$(now)
    teardown
    no_build=${IEA_SMOKE_NO_BUILD:-}
    [ "$build" = 1 ] || no_build=1
    IEA_COMPOSE_VARIANT=$variant IEA_SMOKE_NO_BUILD=$no_build IEA_SMOKE_KEEP=1 docker/compose-smoke.sh
    build=0
    IEA_E2E_COMPOSE_DATA=$IEA_SMOKE_DATA IEA_E2E_COMPOSE_PROJECT=$IEA_SMOKE_PROJECT \
        cargo test -p iea-e2e --test e2e -- scenario compose_faults --include-ignored --test-threads=1
    TIMES+=("$(awk -v v="$variant" -v a="$t0" -v b="$(now)" 'BEGIN {printf "%-9s %6.1f s", v, b - a}')")
done
teardown
echo "== compose suite passed on: $VARIANTS"
for t in "${TIMES[@]}"; do
    printf '   %s\n' "$t"
done
