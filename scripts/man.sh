#!/usr/bin/env bash
# man.sh -- regenerate doc/preflight.1 from the clap definition, and README's table of
# finding codes from the checks' declared codes (unit tests fail when either is stale).
# View the page with: man ./doc/preflight.1
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked --example man > doc/preflight.1
echo "wrote doc/preflight.1"
table=$(mktemp)
trap 'rm -f "$table"' EXIT
cargo run --quiet --locked --example codes > "$table"
awk -v table="$table" '
  /^<!-- codes:end -->/ { skipping = 0 }
  !skipping { print }
  /^<!-- codes:begin/ { while ((getline line < table) > 0) print line; skipping = 1 }
' README.md > README.md.new && mv README.md.new README.md
echo "wrote README.md's table of finding codes"
