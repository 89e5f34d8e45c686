#!/usr/bin/env bash
# Soak: the real mcpauthz binary, pinned to CPU 0, under the harness at
# full rate (pinned to CPU 1) for SOAK_TIME, while the harness writes a new
# bundle revision every second into the directory the server watches and
# rotates the token signing key half-way (JWKS served by the harness at
# tokens.jwks_url). Prints a line a minute and a summary; exits non-zero on
# any error or unexpected decision. Run from the repository root:
#   cmd/mcpauthz-bench/soak.sh            # 10 minutes, 32 callers
#   SOAK_TIME=1m CALLERS=8 cmd/mcpauthz-bench/soak.sh
set -euo pipefail
SOAK_TIME=${SOAK_TIME:-10m}
CALLERS=${CALLERS:-32}
GRPC=${GRPC:-127.0.0.1:19191}
HTTP=${HTTP:-127.0.0.1:18181}
JWKS=${JWKS:-127.0.0.1:18999}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -trimpath -o "$work/mcpauthz" ./cmd/mcpauthz
go build -trimpath -o "$work/mcpauthz-bench" ./cmd/mcpauthz-bench
cp -r decision/testdata/bench "$work/bundle"
cat >"$work/config.yaml" <<YAML
listen: {grpc: "$GRPC", http: "$HTTP"}
bundles: [{path: "$work/bundle"}]
watch: {debounce: 100ms}
resource: {uri: "https://mcp.example.com/mcp", authorization_servers: ["https://auth.example.com"]}
tokens:
  issuer: "https://auth.example.com"
  audience: "https://mcp.example.com/mcp"
  jwks_url: "http://$JWKS/jwks.json"
  algorithms: [RS256]
  refresh_interval: 2s
  min_refresh_interval: 1s
log: {level: warn, format: text}
YAML

taskset=(); command -v taskset >/dev/null && taskset=(taskset -c)
pin() { if [ ${#taskset[@]} -gt 0 ]; then "${taskset[@]}" "$@"; else shift; "$@"; fi; }

# The harness serves the JWKS; the server retries its first fetch until it
# is up, so the order of the two starts does not matter.
# Started directly (not through a function, which would fork a subshell)
# so that $! is the server's own pid, whose RSS the harness reads.
if [ ${#taskset[@]} -gt 0 ]; then
  taskset -c "$SERVER_CPU" "$work/mcpauthz" serve --config "$work/config.yaml" >"$work/server.log" 2>&1 &
else
  "$work/mcpauthz" serve --config "$work/config.yaml" >"$work/server.log" 2>&1 &
fi
server=$!
status=0
pin "$LOAD_CPU" "$work/mcpauthz-bench" --addr "$GRPC" --concurrency "$CALLERS" \
  --soak "$SOAK_TIME" --soak-bundle-dir "$work/bundle" --soak-jwks-listen "$JWKS" \
  --soak-server-pid "$server" --soak-settle 10s || status=$?
echo "server log (warnings and errors):"
grep -v 'bundle loaded' "$work/server.log" | tail -20 || true
kill "$server"
wait "$server" 2>/dev/null || true
exit $status
