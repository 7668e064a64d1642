#!/usr/bin/env bash
# Backs up a five-service Phoenix deployment's Postgres: one `pg_dump -Fc` per service database
# into a new directory, plus a MANIFEST that restore.sh checks. Procedure and caveats:
# docs/operations.md.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: deploy/ops/backup.sh [--prefix PREFIX] [--keys-out FILE] BACKUP_DIR

Dumps the databases of the AS, DS, federation gateway and QS (in that order, see
docs/operations.md) with pg_dump -Fc into BACKUP_DIR (created; must not exist or be empty) and
writes BACKUP_DIR/MANIFEST (database, file, SHA-256, outbox rows of each dump).

Where each database is:
  <SERVICE>_DATABASE_URL   if set: AUTH_DATABASE_URL, DELIVERY_DATABASE_URL, QUEUE_DATABASE_URL,
                           FEDERATION_DATABASE_URL (the keys of the Helm chart's database Secret)
  otherwise                database PREFIX<service> (default phoenix_auth, phoenix_delivery, ...)
                           on the server of the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD

  --prefix PREFIX   database name prefix (default phoenix_)
  --keys-out FILE   also write the four secrets AS_KEY_ENCRYPTION_KEY, DS_REPLAY_MARKER_KEY,
                    QS_STORAGE_KEY and FEDERATION_KEY_ENCRYPTION_KEY (read from this environment,
                    each required) to FILE (mode 0600, outside BACKUP_DIR: keep keys and dumps apart)
USAGE
}

die() {
  echo "backup.sh: $*" >&2
  exit 1
}

prefix="phoenix_"
keys_out=""
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    --keys-out) keys_out="${2:?--keys-out needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [[ -z "$out" ]] || { usage >&2; exit 2; }; out="$1"; shift ;;
  esac
done
[[ -n "$out" ]] || { usage >&2; exit 2; }
[[ "$prefix" =~ ^[a-z_][a-z0-9_]*$ ]] || die "--prefix must be lower-case letters, digits and _"
command -v pg_dump >/dev/null || die "pg_dump not found (install the PostgreSQL client, same major version as the server or newer)"
command -v psql >/dev/null || die "psql not found"

# DS and federation gateway before the QS: whatever the DS or the gateway handed on (outbox row
# relayed, deleted) before its dump was taken is in the QS dump taken after it, unless it was
# still in flight on the bus (docs/operations.md, "Consistency").
SERVICES=(auth delivery federation queue)

if [[ -e "$out" ]]; then
  [[ -d "$out" ]] || die "$out exists and is not a directory"
  [[ -z "$(ls -A "$out")" ]] || die "$out is not empty: a backup goes into a new directory"
fi
out="$(realpath -m "$out")"

if [[ -n "$keys_out" ]]; then
  keys_out="$(realpath -m "$keys_out")"
  [[ -d "$(dirname "$keys_out")" ]] || die "the directory of $keys_out does not exist"
  case "$keys_out" in
    "$out"/*) die "--keys-out must lie outside $out: dumps and keys together open everything" ;;
  esac
  for var in AS_KEY_ENCRYPTION_KEY DS_REPLAY_MARKER_KEY QS_STORAGE_KEY FEDERATION_KEY_ENCRYPTION_KEY; do
    [[ -n "${!var:-}" ]] || die "--keys-out: $var is not set in this environment"
  done
fi
mkdir -p "$out"

# The connection of one service: its URL variable, else PREFIX<service> via the libpq variables.
connection() {
  local var
  var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_DATABASE_URL"
  if [[ -n "${!var:-}" ]]; then echo "${!var}"; else echo "dbname=${prefix}$1"; fi
}

manifest="$out/MANIFEST.partial"
{
  printf 'format\tphoenix-backup\t1\n'
  printf 'created\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'pg_dump\t%s\n' "$(pg_dump --version)"
} >"$manifest"

for service in "${SERVICES[@]}"; do
  conn="$(connection "$service")"
  database="$(psql -X -At -v ON_ERROR_STOP=1 -d "$conn" -c 'SELECT current_database()' 2>&1)" ||
    die "cannot connect to the $service database: $database"
  # Outbox rows are in the dump and go out again after a restore (the bus and the QS dedupe them).
  outbox="$(psql -X -At -v ON_ERROR_STOP=1 -d "$conn" -c \
    "SELECT CASE WHEN to_regclass('phoenix_runtime.outbox') IS NULL THEN -1 ELSE 0 END")"
  if [[ "$outbox" == "0" ]]; then
    outbox="$(psql -X -At -v ON_ERROR_STOP=1 -d "$conn" -c 'SELECT count(*) FROM phoenix_runtime.outbox')"
  else
    outbox="none"
  fi
  file="$service.dump"
  pg_dump --format=custom --file="$out/$file.partial" --dbname="$conn" ||
    die "pg_dump of $database failed; $out is incomplete"
  mv "$out/$file.partial" "$out/$file"
  sum="$(sha256sum "$out/$file" | cut -d' ' -f1)"
  printf 'dump\t%s\t%s\t%s\t%s\t%s\t%s\n' "$service" "$database" "$file" "$sum" "$outbox" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$manifest"
  echo "backup.sh: $service: $database -> $out/$file ($(wc -c <"$out/$file") bytes, outbox rows: $outbox)"
done
mv "$manifest" "$out/MANIFEST"

if [[ -n "$keys_out" ]]; then
  (
    umask 077
    for var in AS_KEY_ENCRYPTION_KEY DS_REPLAY_MARKER_KEY QS_STORAGE_KEY FEDERATION_KEY_ENCRYPTION_KEY; do
      printf '%s=%s\n' "$var" "${!var}"
    done >"$keys_out"
    chmod 600 "$keys_out" # an existing file keeps its mode through the redirection
  )
  echo "backup.sh: secrets -> $keys_out (store it apart from $out)"
fi
echo "backup.sh: done: $out"
