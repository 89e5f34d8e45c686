#!/usr/bin/env bash
# Shows two decisions of the example policy with a real development token:
# a tools/call allowed by its argument rule, and one denied by it.
# Run from the repository root after `make build`.
set -euo pipefail
bin=${MCPAUTHZ:-bin/mcpauthz}
cfg=examples/config/dev.yaml
# Keep the demo's development key apart from the user's own, in a
# temporary directory removed on exit (a key left behind could sign tokens
# for any server that trusts it).
if [ -z "${MCPAUTHZ_DEV_KEY:-}" ]; then
  keydir=$(mktemp -d)
  trap 'rm -rf "$keydir"' EXIT
  export MCPAUTHZ_DEV_KEY=$keydir/dev-key.pem
fi
token=$("$bin" token --config "$cfg" --sub alice --scope "mcp:tools")
for req in tools-call-read-file-allowed tools-call-read-file-denied; do
  echo "== $req: $(tr -d '\n ' < examples/requests/$req.json | grep -o '"arguments":{[^}]*}')"
  "$bin" eval --config "$cfg" --request "examples/requests/$req.json" --bearer "$token" --log-level error
done
