#!/usr/bin/env bash
# Fails when proto/ breaks wire or source compatibility with the last release (buf breaking, the
# FILE rules of buf.yaml); the policy is docs/api-compatibility.md.
#
#   scripts/check-breaking.sh [--against <git ref>] [<repo dir>]
#
# Baseline, first that applies: --against <ref> (or BREAKING_AGAINST), the newest `v*` tag
# reachable from HEAD that is not HEAD itself (the last release), else HEAD~1 (the previous
# commit of main). A repository with a single commit has nothing to compare and passes.
# The baseline is read from git history through buf's git input, so the work tree is compared
# as it is (uncommitted edits included) and a fresh clone needs nothing else.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
BUF=${BUF:-$SCRIPT_DIR/../node_modules/.bin/buf}
against=${BREAKING_AGAINST:-}
repo=""

usage() {
  echo "usage: $0 [--against <git ref>] [<repo dir>]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --against)
      (($# >= 2)) || usage
      against=$2
      shift 2
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      [ -z "$repo" ] || usage
      repo=$1
      shift
      ;;
  esac
done

cd "${repo:-$SCRIPT_DIR/..}"
cd "$(git rev-parse --show-toplevel)"
[ -x "$BUF" ] || {
  echo "check-breaking: buf not found at $BUF (run npm ci, or set BUF)" >&2
  exit 2
}
[ -d .git ] || {
  # buf's git input reads a .git directory; a linked worktree has a .git file instead.
  echo "check-breaking: $(pwd)/.git is not a directory (run from a full clone)" >&2
  exit 2
}

if [ -z "$against" ]; then
  head=$(git rev-parse HEAD)
  while read -r tag; do
    [ -n "$tag" ] || continue
    if [ "$(git rev-parse "$tag^{commit}")" != "$head" ]; then
      against=$tag
      break
    fi
  done < <(git tag --merged HEAD --list 'v*' --sort=-creatordate)
fi
if [ -z "$against" ]; then
  if ! git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
    if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
      echo "check-breaking: shallow clone without HEAD~1; fetch more history (git fetch --deepen=1)" >&2
      exit 2
    fi
    echo "check-breaking: no release tag and no previous commit: nothing to compare"
    exit 0
  fi
  against=HEAD~1
fi
git rev-parse --verify --quiet "$against^{commit}" >/dev/null || {
  echo "check-breaking: unknown git ref '$against'" >&2
  exit 2
}

# Resolved to a commit id: buf's git input reads refs by name from a clone of .git, where
# relative refs (HEAD~1) and local tags are not always what they are here.
commit=$(git rev-parse "$against^{commit}")
echo "check-breaking: proto/ against $against ($commit)"
# buf.yaml (v2) sits at the repository root, so the baseline is the whole tree at that commit;
# buf finds the `proto` module and the breaking rules in it.
if "$BUF" breaking --against ".git#ref=$commit"; then
  echo "check-breaking: no breaking change"
else
  status=$?
  echo "check-breaking: breaking change against $against; see docs/api-compatibility.md" >&2
  exit "$status"
fi
