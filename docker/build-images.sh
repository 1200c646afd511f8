#!/usr/bin/env bash
# Builds the iea-connect runtime image without pulling anything from a container registry:
#
#   1. the release binaries, on the host (cargo build --release --workspace --bins);
#   2. a minimal Debian bookworm root filesystem made with debootstrap from Debian's
#      packages, with Debian's PostgreSQL server for the compose file's PostgreSQL variant
#      (cached as a tarball under target/docker/, so later runs skip it);
#   3. that tarball imported as a local base image (docker import), once per tarball;
#   4. the runtime image FROM that base with the binaries (docker/Dockerfile.local).
#
# Usage: docker/build-images.sh            (as root, or with sudo available for debootstrap)
# Environment:
#   IEA_IMAGE           image to build            (default iea-connect:local)
#   IEA_BASE_IMAGE      local base image           (default iea-connect-base:bookworm)
#   IEA_DEBIAN_MIRROR   Debian mirror for debootstrap (default: the host's apt source,
#                       else http://deb.debian.org/debian)
#   IEA_CARGO_PROFILE   release (default) or dev: dev reuses what `cargo test` already
#                       built (CI), for a larger, slower image that is otherwise the same
#   IEA_SKIP_CARGO=1    use the binaries already built (target/release or target/debug)
#   IEA_REBUILD_ROOTFS=1  make the root filesystem again (e.g. for newer packages)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

IMAGE=${IEA_IMAGE:-iea-connect:local}
PROFILE=${IEA_CARGO_PROFILE:-release}
case "$PROFILE" in
    release) CARGO_FLAGS=(--release) OUT=target/release ;;
    dev) CARGO_FLAGS=() OUT=target/debug ;;
    *) echo "build-images: IEA_CARGO_PROFILE must be release or dev, not $PROFILE" >&2; exit 2 ;;
esac
BASE_IMAGE=${IEA_BASE_IMAGE:-iea-connect-base:bookworm}
SUITE=bookworm
CACHE=$ROOT/target/docker
ROOTFS_TAR=$CACHE/debian-$SUITE-rootfs.tar
ROOTFS_SUM=$ROOTFS_TAR.sha256
# What the cached tarball was made with: a tarball made with other packages is made again.
ROOTFS_KEY=$ROOTFS_TAR.packages
CONTEXT=$CACHE/context
# Packages beyond debootstrap's minbase: trust store for HTTPS (system roots); the
# PostgreSQL server that docker-compose.postgres.yml runs (docker/postgres-entry.sh).
INCLUDE=ca-certificates,postgresql
# The binaries shipped in the image (every component, the CLI, the health check).
BINARIES=(
    iea iea-healthcheck iea-orchestrator iea-auth-client iea-update-client
    iea-credential-verifier iea-deposit-agent iea-web iea-mock-auth iea-mock-updates iea-mock-net-entreprises
)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
TIMES=()
timed() { # timed LABEL CMD...
    local label=$1 t0 t1
    shift
    t0=$(now)
    "$@"
    t1=$(now)
    TIMES+=("$(awk -v l="$label" -v a="$t0" -v b="$t1" 'BEGIN {printf "%-28s %7.1f s", l, b - a}')")
}

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root (debootstrap): run as root or install sudo"
    fi
}

mirror() {
    if [ -n "${IEA_DEBIAN_MIRROR:-}" ]; then
        echo "$IEA_DEBIAN_MIRROR"
        return
    fi
    # The host's own Debian source, when it has one (deb822 or one-line format).
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker Engine does not answer (is the daemon started, may this user use it?)"

# 1. Binaries.
build_binaries() {
    cargo build "${CARGO_FLAGS[@]}" --workspace --bins
}
if [ "${IEA_SKIP_CARGO:-}" = 1 ]; then
    log "1/4 binaries: skipped (IEA_SKIP_CARGO=1)"
else
    log "1/4 binaries: cargo build ${CARGO_FLAGS[*]} --workspace --bins"
    timed "cargo build ($PROFILE)" build_binaries
fi
for b in "${BINARIES[@]}"; do
    [ -x "$OUT/$b" ] || die "$OUT/$b is missing: run cargo build ${CARGO_FLAGS[*]} --workspace --bins"
done

# 2. Root filesystem.
make_rootfs() {
    if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
        log "installing debootstrap (apt-get)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    local dir m
    m=$(mirror)
    mkdir -p "$CACHE"
    dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "as_root rm -rf '$dir'" EXIT
    log "debootstrap --variant=minbase --include=$INCLUDE $SUITE ($m)"
    as_root env PATH="/usr/sbin:/sbin:$PATH" debootstrap --variant=minbase --include="$INCLUDE" \
        "$SUITE" "$dir/root" "$m" >"$CACHE/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $CACHE/debootstrap.log"
    # Keep it small: no package cache or lists, docs, manuals or translations (apt-get
    # update brings the lists back for anyone extending the image). Nothing made at
    # install time either: the cluster postgresql's install creates (the compose
    # variant initialises its own in a volume) and ssl-cert's snakeoil key (a private key
    # shared by every copy of the image).
    as_root sh -c "cd '$dir/root' && rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin \
        var/lib/apt/lists/* usr/share/doc/* usr/share/man/* usr/share/info/* \
        usr/share/locale/* var/log/* tmp/* root/.cache \
        var/lib/postgresql/* etc/postgresql/* \
        etc/ssl/private/ssl-cert-snakeoil.key etc/ssl/certs/ssl-cert-snakeoil.pem"
    as_root tar --numeric-owner -C "$dir/root" -cf "$ROOTFS_TAR.tmp" .
    as_root chown "$(id -u):$(id -g)" "$ROOTFS_TAR.tmp"
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    sha256sum "$ROOTFS_TAR" | cut -d' ' -f1 >"$ROOTFS_SUM"
    echo "$SUITE minbase $INCLUDE" >"$ROOTFS_KEY"
    as_root rm -rf "$dir"
    trap - EXIT
}
if [ "${IEA_REBUILD_ROOTFS:-}" = 1 ] || [ ! -s "$ROOTFS_TAR" ] || [ ! -s "$ROOTFS_SUM" ] ||
    [ "$(cat "$ROOTFS_KEY" 2>/dev/null)" != "$SUITE minbase $INCLUDE" ]; then
    log "2/4 root filesystem: debootstrap $SUITE (+ $INCLUDE)"
    timed "debootstrap rootfs" make_rootfs
else
    log "2/4 root filesystem: cached ($ROOTFS_TAR)"
fi
SUM=$(cat "$ROOTFS_SUM")

# 3. Local base image, imported once per tarball (its checksum is a label).
import_base() {
    docker import \
        --change "LABEL org.iea-connect.rootfs-sha256=$SUM" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --message "Debian $SUITE minbase + $INCLUDE (debootstrap)" \
        "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
}
have=$(docker image inspect -f '{{ index .Config.Labels "org.iea-connect.rootfs-sha256" }}' \
    "$BASE_IMAGE" 2>/dev/null || true)
if [ "$have" = "$SUM" ]; then
    log "3/4 base image: $BASE_IMAGE is up to date"
else
    log "3/4 base image: docker import -> $BASE_IMAGE"
    timed "docker import base" import_base
fi

# 4. Runtime image: only the binaries go into the build context.
build_runtime() {
    rm -rf "$CONTEXT"
    mkdir -p "$CONTEXT/bin"
    for b in "${BINARIES[@]}"; do
        cp "$OUT/$b" "$CONTEXT/bin/"
    done
    strip "$CONTEXT"/bin/* 2>/dev/null || true
    cp docker/Dockerfile.local "$CONTEXT/Dockerfile"
    # The legacy builder: it needs no buildx plugin, and this file needs nothing newer.
    DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        -t "$IMAGE" "$CONTEXT" >"$CACHE/docker-build.log" 2>&1 || {
        cat "$CACHE/docker-build.log" >&2
        die "docker build failed"
    }
    # The image this one replaced, now untagged.
    docker image prune -f --filter label=org.iea-connect.image=runtime >/dev/null
}
log "4/4 runtime image: $IMAGE (docker/Dockerfile.local)"
timed "docker build runtime image" build_runtime

log "done: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}'))"
for t in "${TIMES[@]}"; do
    printf '   %s\n' "$t" >&2
done
