#!/usr/bin/env bash
# Builds the artifacts of a release into release/<version>/ (docs/releasing.md):
#
#   scripts/release.sh <version> [--dry-run]
#
# Refuses a dirty tree, a version that is not semver, and a version the packages, the chart's
# appVersion or CHANGELOG.md do not carry. Runs the checks (buf lint, codegen freshness, tsc,
# Biome, buf breaking and the package test when their scripts exist), then writes
#
#   phoenix-<pkg>-<version>.tgz   `npm pack` of @phoenix/{proto,crypto,wire,mls,client}
#   phoenix-<chartVersion>.tgz    the chart, as `helm package` lays it out (phoenix/ at the root)
#   IMAGE                         the image reference and id (localhost/phoenix-homeserver:<version>)
#   SHA256SUMS                    of every file above
#
# and prints the commands that tag, sign and publish: it never tags, pushes or publishes itself.
# --dry-run runs the validation and the checks and lists what the packages would contain, but
# writes nothing to release/ and builds no image. Every step is bounded by a timeout.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

PACKAGES=(proto crypto wire mls client)
CHART_DIR=k8s/charts/phoenix
IMAGE_NAME="${PHOENIX_RELEASE_IMAGE:-localhost/phoenix-homeserver}"
# Semantic Versioning 2.0.0 (semver.org's regular expression, without a leading "v").
SEMVER='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$'

log() { printf '[release] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  echo "usage: scripts/release.sh <version> [--dry-run]   (version: semver, e.g. 0.1.0)" >&2
  exit 2
}

VERSION=""
DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
  --dry-run) DRY_RUN=1 ;;
  -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && exit 0 ;;
  -*) usage ;;
  *)
    [ -z "$VERSION" ] || usage
    VERSION="$arg"
    ;;
  esac
done
[ -n "$VERSION" ] || usage

# Every step runs under `timeout`; the limit is generous for this 2-core machine.
STEP_START=$SECONDS
step() {
  local limit="$1" name="$2"
  shift 2
  log "--- $name (limit ${limit}s)"
  STEP_START=$SECONDS
  local rc=0
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then die "$name: timed out after ${limit}s"; fi
  ((rc == 0)) || die "$name failed (exit $rc)"
  log "    $name: $((SECONDS - STEP_START)) s"
}

# --- validation ---------------------------------------------------------------------------------

[[ "$VERSION" =~ $SEMVER ]] || die "'$VERSION' is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build], no leading v)"

git rev-parse --git-dir >/dev/null 2>&1 || die "not a git checkout"
dirty="$(git status --porcelain --untracked-files=normal)"
[ -z "$dirty" ] || die "the working tree is not clean; commit or remove these first:
$dirty"

# One version for every workspace package (the five published ones and the private ones, whose
# version the image is labelled with), and the chart's appVersion (the default image tag).
mismatch="$(node -e '
  const fs = require("node:fs");
  const path = require("node:path");
  const [version, ...dirs] = process.argv.slice(1);
  for (const dir of dirs) {
    const file = path.join(dir, "package.json");
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    if (pkg.version !== version) console.log(`${file}: ${pkg.name} is ${pkg.version}`);
    for (const field of ["dependencies", "devDependencies", "peerDependencies"]) {
      for (const [name, spec] of Object.entries(pkg[field] ?? {})) {
        if (name.startsWith("@phoenix/") && spec.replace(/^[\^~]/, "") !== version)
          console.log(`${file}: ${field}.${name} is ${spec}`);
      }
    }
  }
' "$VERSION" libs/* services/*)"
[ -z "$mismatch" ] || die "$(wc -l <<<"$mismatch") package versions or @phoenix/* dependency specs differ from $VERSION (docs/releasing.md, \"Setting the version\"):
$(head -n 12 <<<"$mismatch")"

chart_field() { sed -n "s/^$1:[[:space:]]*\"\{0,1\}\([^\"[:space:]]*\)\"\{0,1\}[[:space:]]*\$/\1/p" "$CHART_DIR/Chart.yaml"; }
CHART_VERSION="$(chart_field version)"
APP_VERSION="$(chart_field appVersion)"
[ "$APP_VERSION" = "$VERSION" ] || die "$CHART_DIR/Chart.yaml: appVersion is '$APP_VERSION', not $VERSION"
[[ "$CHART_VERSION" =~ $SEMVER ]] || die "$CHART_DIR/Chart.yaml: version '$CHART_VERSION' is not semver"

# The chart's version must move whenever the chart changed since the last release tag.
PREVIOUS_TAG="$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null || true)"
if [ -n "$PREVIOUS_TAG" ] && [ "$PREVIOUS_TAG" != "v$VERSION" ]; then
  previous_chart="$(git show "$PREVIOUS_TAG:$CHART_DIR/Chart.yaml" 2>/dev/null | sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}.*/\1/p')"
  if [ "$previous_chart" = "$CHART_VERSION" ] && ! git diff --quiet "$PREVIOUS_TAG" HEAD -- "$CHART_DIR"; then
    die "the chart changed since $PREVIOUS_TAG but its version is still $CHART_VERSION: bump version in $CHART_DIR/Chart.yaml"
  fi
fi

grep -q "^## \[$VERSION\]" CHANGELOG.md || die "CHANGELOG.md has no '## [$VERSION] - <date>' section"

if git rev-parse -q --verify "refs/tags/v$VERSION" >/dev/null; then
  [ "$(git rev-list -n1 "v$VERSION")" = "$(git rev-parse HEAD)" ] ||
    die "tag v$VERSION exists and points to another commit"
fi

OUT="release/$VERSION"
if ((!DRY_RUN)) && [ -e "$OUT" ]; then die "$OUT exists; remove it to build the release again"; fi

COMMIT="$(git rev-parse HEAD)"
log "release $VERSION of $COMMIT (chart $CHART_VERSION)$( ((DRY_RUN)) && echo ', dry run')"

# --- checks -------------------------------------------------------------------------------------

step 300 "buf lint" npx buf lint
step 600 "codegen is fresh" bash scripts/codegen.sh --check
step 1200 "typecheck (tsc -b + tests)" bash scripts/typecheck.sh
step 600 "lint (biome ci)" npx biome ci --colors=off --max-diagnostics=10 .
if [ -f scripts/check-breaking.sh ]; then
  step 600 "proto breaking changes" bash scripts/check-breaking.sh
else
  log "--- proto breaking changes: skipped, scripts/check-breaking.sh does not exist"
fi
if [ -f scripts/package-test.sh ]; then
  step 1800 "package test" bash scripts/package-test.sh
else
  log "--- package test: skipped, scripts/package-test.sh does not exist"
fi

workspace_args=()
TARBALLS=()
for p in "${PACKAGES[@]}"; do
  workspace_args+=(-w "@phoenix/$p")
  TARBALLS+=("phoenix-$p-$VERSION.tgz")
done

# The chart as `helm package` makes it: a gzipped tar whose entries are phoenix/<file>, without
# what .helmignore excludes. Entries are sorted, owned by 0:0 and dated at the commit, so the
# same commit gives the same bytes.
package_chart() {
  local dest="$1" excludes=() pattern
  while IFS= read -r pattern; do
    pattern="${pattern%%#*}"
    pattern="${pattern%"${pattern##*[![:space:]]}"}"
    [ -n "$pattern" ] || continue
    excludes+=("--exclude=${pattern%/}")
  done <"$CHART_DIR/.helmignore"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mode='u+rw,go+r,go-w' \
    --mtime="@$(git log -1 --format=%ct)" "${excludes[@]}" \
    --transform='s,^\./,,' -C "$(dirname "$CHART_DIR")" -cf - "$(basename "$CHART_DIR")" |
    gzip -n -9 >"$dest"
}

if ((DRY_RUN)); then
  step 900 "npm pack --dry-run (${PACKAGES[*]})" npm pack --dry-run "${workspace_args[@]}"
  log "would write $OUT/: ${TARBALLS[*]} phoenix-$CHART_VERSION.tgz IMAGE SHA256SUMS"
  log "would build and tag $IMAGE_NAME:$VERSION (deploy/image/build.sh image)"
  log "dry run done: $VERSION passes every check"
  exit 0
fi

# --- artifacts ----------------------------------------------------------------------------------

# Written into release/.<version>.partial and renamed at the end: a failed run leaves no
# release/<version>/ that looks finished.
FINAL="$OUT"
OUT="release/.$VERSION.partial"
rm -rf "$OUT"
mkdir -p "$OUT"
step 900 "npm pack (${PACKAGES[*]})" npm pack --pack-destination "$OUT" "${workspace_args[@]}"
log "--- chart package phoenix-$CHART_VERSION.tgz"
package_chart "$OUT/phoenix-$CHART_VERSION.tgz"
# The packaged chart, unpacked elsewhere, must render (helm template, or k8s/tools/helm-render).
chart_check="$(mktemp -d)"
trap 'rm -rf "$chart_check"' EXIT
tar -C "$chart_check" -xzf "$OUT/phoenix-$CHART_VERSION.tgz"
step 300 "the packaged chart renders" bash -c 'npm run -s chart:render -- "$@" >"$0"' "$chart_check/rendered.yaml" \
  --chart "$chart_check/phoenix" --release release-check --set domain=release.example \
  --set postgresql.enabled=true --set nats.enabled=true
log "    $(grep -c '^kind: Deployment' "$chart_check/rendered.yaml") Deployments, $(grep -c '^kind:' "$chart_check/rendered.yaml") objects"
# deploy/image/build.sh builds the image straight under the release tag, so a concurrent build of
# its default tag (the CI and Helm test image) cannot slip in between build and tag.
step 3600 "image $IMAGE_NAME:$VERSION (deploy/image/build.sh image)" \
  env PHOENIX_IMAGE="$IMAGE_NAME:$VERSION" bash deploy/image/build.sh image
image_id="$(podman image inspect --format '{{.Id}}' "$IMAGE_NAME:$VERSION")"
image_version="$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$IMAGE_NAME:$VERSION" 2>/dev/null || true)"
if [ -n "$image_version" ] && [ "$image_version" != "<no value>" ] && [ "$image_version" != "$VERSION" ]; then
  die "the image is labelled version $image_version, not $VERSION"
fi
printf '%s sha256:%s\n' "$IMAGE_NAME:$VERSION" "${image_id#sha256:}" >"$OUT/IMAGE"

(cd "$OUT" && sha256sum -- *.tgz IMAGE >SHA256SUMS)
mv "$OUT" "$FINAL"
OUT="$FINAL"

log "done: $OUT"
(cd "$OUT" && ls -l -- * | awk '{ printf "  %10d  %s\n", $5, $9 }') >&2
{
  echo
  echo "Nothing was tagged, pushed or published. To release:"
  echo
  echo "  git tag -s v$VERSION -m \"Phoenix $VERSION\" $COMMIT"
  echo "  git push origin v$VERSION"
  for tarball in "${TARBALLS[@]}"; do echo "  npm publish --access public $OUT/$tarball"; done
  echo "  podman push $IMAGE_NAME:$VERSION <registry>/phoenix-homeserver:$VERSION"
  echo "  helm push $OUT/phoenix-$CHART_VERSION.tgz oci://<registry>/charts"
} >&2
