#!/usr/bin/env bash
# install-example.sh -- how an installer embeds preflight: check first, sync only if nothing failed.
#
#   PREFLIGHT=./bin/preflight PREFLIGHT_PROFILE=bkce7 HELMFILE_FILE=helmfile.yaml ./install-example.sh
#
# preflight's exit codes: 0 nothing failed (warnings allowed), 1 a check failed,
# 2 usage/profile error (nothing ran), 3 a check could not be evaluated and none failed.
set -uo pipefail

PREFLIGHT="${PREFLIGHT:-preflight}"
PROFILE="${PREFLIGHT_PROFILE:-default}"
HELMFILE_FILE="${HELMFILE_FILE:-helmfile.yaml}"

"$PREFLIGHT" --profile "$PROFILE" --no-progress "$@"
rc=$?
case "$rc" in
  0) ;;
  1) echo "install: preflight found problems (fixes above; 'preflight --fix' applies the safe ones); not installing" >&2
     exit 1 ;;
  3) if [ "${PREFLIGHT_ALLOW_UNDECIDED:-0}" != 1 ]; then
       echo "install: preflight could not evaluate every check (see '?' lines); set PREFLIGHT_ALLOW_UNDECIDED=1 to install anyway" >&2
       exit 3
     fi ;;
  *) echo "install: preflight did not run (exit $rc): check the profile and flags" >&2
     exit "$rc" ;;
esac

exec helmfile -f "$HELMFILE_FILE" sync
