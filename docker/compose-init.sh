#!/bin/sh
# The one-shot `init` step of docker-compose.yml, run as root in the iea-connect image
# before any other service starts:
#   1. `iea certs init` into /data/certs (the host's docker/data/certs): the internal CA,
#      every component's certificate, the mocks test CA. Kept if already complete.
#   2. /data/stack.json for the `iea` CLI on the host: host-side addresses
#      (127.0.0.1:<published port>), paths relative to the data directory.
#   3. Hands /data and the named volumes to the unprivileged user the services run as
#      (IEA_UID:IEA_GID), which is why this step alone runs as root.
set -eu

: "${IEA_UID:=10001}"
: "${IEA_GID:=10001}"
: "${IEA_BIND:=127.0.0.1}"
: "${IEA_CERT_SANS:=}"

# Extra names for every certificate (deployments reached under another host name).
set --
for name in $IEA_CERT_SANS; do
    set -- "$@" --san "$name"
done
iea certs init /data/certs "$@"

# What the host reaches: the bind address, or loopback when bound to every address.
case "$IEA_BIND" in
    0.0.0.0 | "::" | "[::]" | "") host=127.0.0.1 ;;
    *:*) host="[$IEA_BIND]" ;;
    *) host=$IEA_BIND ;;
esac

mock() { # mock NAME HTTPS HTTP ADMIN [FALLBACK]
    printf '    "%s": {\n      "https": "https://%s:%s",\n' "$1" "$host" "$2"
    if [ -n "${5:-}" ]; then
        printf '      "fallback": "https://%s:%s",\n' "$host" "$5"
    fi
    printf '      "http": "http://%s:%s",\n      "admin": "http://%s:%s/__admin"\n    }' \
        "$host" "$3" "$host" "$4"
}

umask 077
tmp=/data/.stack.json.tmp
{
    printf '{\n'
    printf '  "pid": 0,\n'
    printf '  "data_dir": ".",\n'
    printf '  "orchestrator": "%s:%s",\n' "$host" "$IEA_PORT_ORCHESTRATOR"
    printf '  "installation_id": "%s",\n' "$IEA_INSTALLATION_ID"
    printf '  "ca": "certs/ca.pem",\n'
    printf '  "orchestrator_server_name": "orchestrator",\n'
    printf '  "web": "http://%s:%s",\n' "$host" "${IEA_PORT_WEB:-50080}"
    printf '  "agents": {\n'
    printf '    "auth-client": "%s:%s",\n' "$host" "$IEA_PORT_AUTH_CLIENT"
    printf '    "credential-verifier": "%s:%s",\n' "$host" "$IEA_PORT_CREDENTIAL_VERIFIER"
    printf '    "deposit-agent": "%s:%s",\n' "$host" "${IEA_PORT_DEPOSIT_AGENT:-50064}"
    printf '    "update-client": "%s:%s"\n' "$host" "$IEA_PORT_UPDATE_CLIENT"
    printf '  },\n'
    printf '  "mocks": {\n'
    mock impact-emploi-auth "$IEA_PORT_AUTH_HTTPS" "$IEA_PORT_AUTH_HTTP" "$IEA_PORT_AUTH_ADMIN" \
        "$IEA_PORT_AUTH_FALLBACK"
    printf ',\n'
    mock impact-emploi-updates "$IEA_PORT_UPDATES_HTTPS" "$IEA_PORT_UPDATES_HTTP" "$IEA_PORT_UPDATES_ADMIN"
    printf ',\n'
    mock net-entreprises "$IEA_PORT_NE_HTTPS" "$IEA_PORT_NE_HTTP" "$IEA_PORT_NE_ADMIN"
    printf '\n  },\n'
    printf '  "mocks_admin_token": "%s",\n' "$IEA_MOCKS_ADMIN_TOKEN"
    printf '  "mocks_ca": "certs/mocks-ca.pem"\n'
    printf '}\n'
} >"$tmp"
mv "$tmp" /data/stack.json

chown -R "$IEA_UID:$IEA_GID" /data /volumes
echo "init: certificates in /data/certs, stack.json for $host; owner $IEA_UID:$IEA_GID"
