#!/usr/bin/env bash
# The end-to-end suite against the composed stack: the same scenarios as on the embedded
# stack (tests/tests/e2e/scenarios.rs), then the faults only compose can have
# (compose_faults.rs: a container stopped and started, a paused mock, a mock cut off from
# the network), one test at a time on one stack. compose-smoke.sh brings the stack up
# (images built without pulling anything) and checks it first; the stack is torn down at
# the end whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export IEA_SMOKE_PROJECT=${IEA_SMOKE_PROJECT:-iea-smoke}
export IEA_SMOKE_DATA=${IEA_SMOKE_DATA:-$ROOT/target/compose-smoke}

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    COMPOSE=(docker-compose)
fi
teardown() {
    IEA_COMPOSE_DATA=$IEA_SMOKE_DATA "${COMPOSE[@]}" -p "$IEA_SMOKE_PROJECT" -f "$ROOT/docker-compose.yml" \
        down -v --remove-orphans >/dev/null 2>&1 || true
}
trap teardown EXIT

IEA_SMOKE_KEEP=1 docker/compose-smoke.sh

IEA_E2E_COMPOSE_DATA=$IEA_SMOKE_DATA IEA_E2E_COMPOSE_PROJECT=$IEA_SMOKE_PROJECT \
    cargo test -p iea-e2e --test e2e -- scenario compose_faults --include-ignored --test-threads=1
