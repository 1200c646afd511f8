#!/usr/bin/env bash
# Smoke test of the composed stack, from a clean state:
#   1. the image (docker/build-images.sh: nothing pulled; incremental when run again);
#   2. `compose up -d`, every service healthy within 60 s (IEA_SMOKE_DEADLINE);
#   3. `iea status --json` on the host reports "indicator": "connected" and the four
#      agents healthy;
#   4. the orchestrator's database is the variant's: its `database open` log line names
#      the SQLite file or the PostgreSQL server, and with PostgreSQL the server holds the
#      orchestrator's tables and its first administrator;
#   5. `compose down -v`, always (IEA_SMOKE_KEEP=1 keeps the stack up instead).
# Exits non-zero with a message saying which step failed.
#
# It uses its own compose project (iea-smoke) and data directory (target/compose-smoke),
# so a stack started by hand from docker/data is left alone, but it needs the same host
# ports: stop such a stack first (or move its ports, see docker/README.md).
#
# Environment: IEA_COMPOSE_VARIANT (sqlite, the default: docker-compose.yml alone; or
# postgres: with docker-compose.postgres.yml), IEA_SMOKE_NO_BUILD=1 (use the image as it
# is), IEA_SMOKE_DEADLINE (seconds, default 60), IEA_SMOKE_KEEP=1, IEA_CARGO_PROFILE
# (release or dev, as for build-images.sh: also which `iea` runs on the host), plus
# docker-compose.yml's own variables.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PROJECT=${IEA_SMOKE_PROJECT:-iea-smoke}
DATA=${IEA_SMOKE_DATA:-$ROOT/target/compose-smoke}
DEADLINE=${IEA_SMOKE_DEADLINE:-60}
case "${IEA_CARGO_PROFILE:-release}" in
    dev) IEA=$ROOT/target/debug/iea ;;
    *) IEA=$ROOT/target/release/iea ;;
esac
SERVICES=(impact-emploi-auth impact-emploi-updates net-entreprises auth-client update-client
    credential-verifier deposit-agent orchestrator)
VARIANT=${IEA_COMPOSE_VARIANT:-sqlite}
FILES=(-f "$ROOT/docker-compose.yml")
case "$VARIANT" in
    sqlite) ;;
    postgres)
        FILES+=(-f "$ROOT/docker-compose.postgres.yml")
        SERVICES+=(postgres)
        ;;
    *)
        echo "compose-smoke: IEA_COMPOSE_VARIANT must be sqlite or postgres, not $VARIANT" >&2
        exit 2
        ;;
esac

export IEA_COMPOSE_DATA=$DATA
export IEA_IMAGE=${IEA_IMAGE:-iea-connect:local}
if [ "$(id -u)" != 0 ]; then
    # Files the containers write into the data directory stay readable by this user.
    export IEA_UID=${IEA_UID:-$(id -u)} IEA_GID=${IEA_GID:-$(id -g)}
fi

say() { printf '== smoke: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
else
    echo "compose-smoke: FAILED: neither 'docker compose' nor 'docker-compose' is installed" >&2
    exit 1
fi
compose() { "${COMPOSE[@]}" -p "$PROJECT" "${FILES[@]}" "$@"; }

teardown() {
    compose down -v --remove-orphans >/dev/null 2>&1 || true
}

fail() {
    echo "compose-smoke: FAILED: $*" >&2
    echo "--- compose ps" >&2
    compose ps >&2 || true
    echo "--- last log lines" >&2
    compose logs --no-color --tail=30 >&2 || true
    exit 1
}

on_exit() {
    local rc=$?
    if [ "${IEA_SMOKE_KEEP:-}" = 1 ]; then
        say "kept up (IEA_SMOKE_KEEP=1): IEA_DATA_DIR=$DATA $IEA status; stop with: ${COMPOSE[*]} -p $PROJECT ${FILES[*]} down -v"
    else
        say "tearing down (${COMPOSE[*]} -p $PROJECT ${FILES[*]} down -v)"
        teardown
    fi
    # The plain closing line that CI reads.
    if [ "$rc" = 0 ]; then
        echo "compose-smoke: 1 passed, 0 failed"
    else
        echo "compose-smoke: 0 passed, 1 failed"
    fi
    exit "$rc"
}

trap on_exit EXIT
docker info >/dev/null 2>&1 || fail "the Docker Engine does not answer"

T0=$(now)
if [ "${IEA_SMOKE_NO_BUILD:-}" != 1 ]; then
    say "image: docker/build-images.sh"
    docker/build-images.sh || fail "building the image (docker/build-images.sh)"
fi
docker image inspect "$IEA_IMAGE" >/dev/null 2>&1 ||
    fail "image $IEA_IMAGE is missing: run docker/build-images.sh"
[ -x "$IEA" ] || fail "$IEA is missing: run docker/build-images.sh"
BUILD_SECS=$(since "$T0")

say "clean state: down -v, empty $DATA"
teardown
rm -rf "$DATA"
mkdir -p "$DATA"

say "${COMPOSE[*]} -p $PROJECT ${FILES[*]} up -d ($VARIANT)"
T_UP=$(now)
compose up -d >"$DATA.up.log" 2>&1 || {
    cat "$DATA.up.log" >&2
    fail "compose up -d (its output is above: a host port already taken? a service unhealthy?)"
}

# Every service healthy, and the init step exited 0, before the deadline.
health_of() {
    local id
    id=$(compose ps -q "$1" 2>/dev/null || true)
    [ -n "$id" ] || {
        echo missing
        return
    }
    docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null ||
        echo missing
}
while :; do
    pending=()
    for s in "${SERVICES[@]}"; do
        h=$(health_of "$s")
        [ "$h" = healthy ] || pending+=("$s:$h")
    done
    [ ${#pending[@]} -eq 0 ] && break
    elapsed=$(since "$T_UP")
    if awk -v e="$elapsed" -v d="$DEADLINE" 'BEGIN {exit !(e > d)}'; then
        fail "not healthy within ${DEADLINE} s: ${pending[*]}"
    fi
    sleep 1
done
HEALTHY_SECS=$(since "$T_UP")
# `up -d` itself waits for the services that others depend on: the deadline counts from
# before it.
if awk -v e="$HEALTHY_SECS" -v d="$DEADLINE" 'BEGIN {exit !(e > d)}'; then
    fail "healthy only after ${HEALTHY_SECS} s, more than ${DEADLINE} s"
fi
init_id=$(compose ps -q init)
init_rc=$(docker inspect -f '{{.State.ExitCode}}' "$init_id" 2>/dev/null || echo "?")
[ "$init_rc" = 0 ] || fail "the init step exited $init_rc"
say "every service healthy ${HEALTHY_SECS} s after up"

# The CLI on the host, through stack.json: connected, four healthy agents. The first
# authentication runs as the orchestrator starts; give it a few seconds.
[ -f "$DATA/stack.json" ] || fail "$DATA/stack.json was not written by the init step"
T_STATUS=$(now)
status=""
verdict=""
while :; do
    status=$(IEA_DATA_DIR=$DATA "$IEA" status --json 2>&1) || true
    verdict=$(printf '%s' "$status" | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except ValueError:
    print("not JSON"); sys.exit()
if "error" in s:
    print("error " + s["error"].get("code", "?")); sys.exit()
agents = {a["name"]: a["healthy"] for a in s.get("agents", [])}
want = {"auth-client", "update-client", "credential-verifier", "deposit-agent"}
if s.get("indicator") != "connected":
    print("indicator " + str(s.get("indicator")))
elif set(agents) != want or not all(agents.values()):
    print("agents " + json.dumps(agents))
else:
    print("ok")
')
    [ "$verdict" = ok ] && break
    if awk -v e="$(since "$T_STATUS")" 'BEGIN {exit !(e > 30)}'; then
        echo "$status" >&2
        fail "iea status: $verdict (expected connected and four healthy agents)"
    fi
    sleep 1
done
STATUS_SECS=$(since "$T_STATUS")
printf '%s\n' "$status"
say "iea status: connected, four agents healthy (${STATUS_SECS} s after healthy)"
# The database the orchestrator opened, from its log line (the URL without password).
database=$(compose logs --no-color orchestrator 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' |
    grep 'database open' | grep -o '\(sqlite\|postgres\)://[^ ]*' | tail -n 1 || true)
case "$VARIANT:$database" in
    sqlite:sqlite://*) ;;
    postgres:postgres://*@postgres:5432/iea) ;;
    *) fail "the orchestrator's database is '${database:-not logged}', not the $VARIANT variant's" ;;
esac
if [ "$VARIANT" = postgres ]; then
    # On the server itself: the orchestrator's tables, and the first administrator.
    tables=$(compose exec -T postgres psql -U postgres -d iea -X -A -t -c \
        "SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM information_schema.tables
         WHERE table_schema = 'public'" 2>&1) || fail "psql in the postgres container: $tables"
    admins=$(compose exec -T postgres psql -U postgres -d iea -X -A -t -c \
        "SELECT count(*) FROM users" 2>&1) || fail "psql in the postgres container: $admins"
    tables=$(printf '%s' "$tables" | tr -d '\r')
    admins=$(printf '%s' "$admins" | tr -d '\r ')
    case " $tables " in
        *" users "*) ;;
        *) fail "no orchestrator tables in PostgreSQL (tables: '$tables')" ;;
    esac
    [ "${admins:-0}" -ge 1 ] 2>/dev/null || fail "no user in PostgreSQL's users table ('$admins')"
    say "PostgreSQL holds the orchestrator's tables ($tables), $admins user(s)"
fi
say "orchestrator database: $database"

# The web console's container, from the host through its published port: the sign-in page
# is served, a page behind it is refused without a session, and signed in as the
# administrator (the password from the orchestrator's volume) its JSON API gives the same
# status as the CLI, through the container's own TLS channel to the orchestrator.
web=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["web"])' "$DATA/stack.json")
admin_password=$(compose exec -T orchestrator cat /var/lib/iea-connect/admin-password | tr -d '\r\n')
[ -n "$admin_password" ] || fail "no administrator password in the orchestrator's volume"
web_verdict=$(IEA_WEB_PASSWORD=$admin_password python3 - "$web" <<'PY'
import json, os, sys, urllib.error, urllib.request
web = sys.argv[1]
def get(path, headers=None):
    req = urllib.request.Request(web + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
code, page = get("/connexion")
if code != 200 or "Connexion".encode() not in page:
    print(f"sign-in page: {code}"); sys.exit()
code, _ = get("/api/v1/status")
if code != 401:
    print(f"status without a session: {code}, not 401"); sys.exit()
req = urllib.request.Request(
    web + "/api/v1/session",
    data=json.dumps({"user": "Administrateur", "password": os.environ["IEA_WEB_PASSWORD"]}).encode(),
    headers={"Content-Type": "application/json"}, method="POST")
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        cookie = next(v.split(";")[0] for k, v in r.getheaders()
                      if k.lower() == "set-cookie" and v.startswith("iea_session="))
except (urllib.error.HTTPError, StopIteration) as e:
    print(f"sign-in: {e}"); sys.exit()
code, body = get("/api/v1/status", {"Cookie": cookie})
if code != 200:
    print(f"status signed in: {code}"); sys.exit()
s = json.loads(body)
print("ok" if s.get("indicator") == "connected" else "indicator " + str(s.get("indicator")))
PY
)
[ "$web_verdict" = ok ] || fail "web console at $web: $web_verdict"
say "web console at $web: sign-in page served, refused without a session, status connected once signed in"
say "PASSED ($VARIANT): image ${BUILD_SECS} s, healthy ${HEALTHY_SECS} s after up, total $(since "$T0") s"
