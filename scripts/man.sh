#!/usr/bin/env bash
# man.sh -- regenerate doc/preflight.1 from the clap definition (tests/cli.rs fails when the
# committed page and the definition differ). View it with: man ./doc/preflight.1
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked --example man > doc/preflight.1
echo "wrote doc/preflight.1"
