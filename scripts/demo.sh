#!/bin/bash
# The demo: bootstrap, then processes contend for one lock on a throwaway ZooKeeper
# (examples/contention.py). Arguments go to the example (see its --help).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
"$repo/scripts/bootstrap.sh" >/dev/null
# shellcheck source=scripts/_env.sh
. "$repo/scripts/_env.sh"
[ -f examples/contention.py ] || { echo "demo.sh: examples/contention.py is missing" >&2; exit 1; }
exec .venv/bin/python examples/contention.py "$@"
