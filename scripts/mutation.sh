#!/usr/bin/env bash
# Mutation testing of the pure packages (configured in pyproject.toml [tool.mutmut];
# docs/mutation.md explains the score and lists the survivors judged equivalent).
# Slow, so not part of scripts/check or CI. Needs the `mutation` extra:
#   .venv/bin/pip install -e '.[dev,mutation]'
# Usage: scripts/mutation.sh [--resume] [-- mutmut run arguments, e.g. mutant names]
# MUTATION_CHILDREN (default 1) sets how many mutants run at once.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${VENV_BIN:-.venv/bin}
if [[ "${1:-}" == "--resume" ]]; then
  shift
else
  rm -rf mutants  # results of earlier tests and sources would be reused
fi
[[ "${1:-}" == "--" ]] && shift
start=$SECONDS
nice -n 15 "$bin/mutmut" run --max-children "${MUTATION_CHILDREN:-1}" "$@"
echo "mutmut ran for $((SECONDS - start)) s"
"$bin/python" -m scripts.mutation_score --survivors
