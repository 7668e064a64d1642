#!/usr/bin/env bash
# Restores a backup made by backup.sh into empty databases of a fresh deployment, before any of
# its services starts. Procedure and caveats: docs/operations.md.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: deploy/ops/restore.sh [--prefix PREFIX] BACKUP_DIR

Checks BACKUP_DIR/MANIFEST and every dump's SHA-256, checks that every target database is empty
or missing (and refuses to touch anything otherwise), creates the missing ones, then restores
each dump with pg_restore (one transaction per database, objects owned by the connecting role).
Start the services only afterwards, with the secrets of the backup.

Where each database goes:
  <SERVICE>_DATABASE_URL   if set: AUTH_DATABASE_URL, DELIVERY_DATABASE_URL, QUEUE_DATABASE_URL,
                           FEDERATION_DATABASE_URL (the database must exist: it is not created)
  otherwise                database PREFIX<service> (default phoenix_auth, ...) on the server of
                           the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD (created with
                           createdb when missing; the role needs CREATEDB)

  --prefix PREFIX   database name prefix of the targets (default phoenix_; may differ from the
                    backup's: the dumps carry no database names)
USAGE
}

die() {
  echo "restore.sh: $*" >&2
  exit 1
}

prefix="phoenix_"
dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [[ -z "$dir" ]] || { usage >&2; exit 2; }; dir="$1"; shift ;;
  esac
done
[[ -n "$dir" ]] || { usage >&2; exit 2; }
[[ "$prefix" =~ ^[a-z_][a-z0-9_]*$ ]] || die "--prefix must be lower-case letters, digits and _"
for tool in pg_restore psql createdb sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

manifest="$dir/MANIFEST"
[[ -f "$manifest" ]] || die "$manifest not found: not a complete backup.sh backup"
[[ "$(head -n 1 "$manifest")" == $'format\tphoenix-backup\t1' ]] ||
  die "$manifest is not a phoenix-backup 1 manifest"

# 1. The backup: every service's dump present and intact.
declare -A file_of
while IFS=$'\t' read -r kind service _database file sum _outbox _at; do
  [[ "$kind" == "dump" ]] || continue
  [[ -f "$dir/$file" ]] || die "$dir/$file (the $service dump) is missing"
  [[ "$(sha256sum "$dir/$file" | cut -d' ' -f1)" == "$sum" ]] ||
    die "$dir/$file does not match its SHA-256 in the MANIFEST (damaged or altered copy)"
  file_of[$service]="$file"
done <"$manifest"
SERVICES=(auth delivery federation queue)
for service in "${SERVICES[@]}"; do
  [[ -n "${file_of[$service]:-}" ]] || die "$manifest lists no dump of the $service database"
done

connection() {
  local var
  var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_DATABASE_URL"
  if [[ -n "${!var:-}" ]]; then echo "${!var}"; else echo "dbname=${prefix}$1"; fi
}
given_url() {
  local var
  var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_DATABASE_URL"
  [[ -n "${!var:-}" ]]
}

# 2. The targets: all empty or missing before anything is written. A service that already started
# on a target created its own keys there; restoring over them would mix two deployments.
RELATIONS="SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
missing=()
refusals=()
for service in "${SERVICES[@]}"; do
  conn="$(connection "$service")"
  if count="$(psql -X -At -v ON_ERROR_STOP=1 -d "$conn" -c "$RELATIONS" 2>&1)"; then
    [[ "$count" == "0" ]] || refusals+=("the $service database ($(psql -X -At -d "$conn" -c 'SELECT current_database()')) is not empty: $count relations")
  elif given_url "$service"; then
    refusals+=("cannot connect to the $service database (create it first): $count")
  elif [[ "$count" == *"does not exist"* ]]; then
    missing+=("$service")
  else
    refusals+=("cannot connect to ${prefix}$service: $count")
  fi
done
if [[ ${#refusals[@]} -gt 0 ]]; then
  printf 'restore.sh: %s\n' "${refusals[@]}" >&2
  die "nothing restored (targets must be empty or missing: drop them, or use another --prefix)"
fi

# 3. Create the missing, restore each dump in one transaction (a failure leaves that database empty).
for service in "${missing[@]}"; do
  createdb "${prefix}$service" || die "createdb ${prefix}$service failed"
  echo "restore.sh: created ${prefix}$service"
done
for service in "${SERVICES[@]}"; do
  conn="$(connection "$service")"
  pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
    --dbname="$conn" "$dir/${file_of[$service]}" ||
    die "pg_restore of the $service dump failed (its database was left empty; the ones before it are restored)"
  psql -X -q -v ON_ERROR_STOP=1 -d "$conn" -c ANALYZE
  echo "restore.sh: $service: $dir/${file_of[$service]} restored"
done
echo "restore.sh: done; start the services with the secrets of this backup"
