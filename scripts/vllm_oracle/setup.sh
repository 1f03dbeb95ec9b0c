#!/usr/bin/env bash
# Build the virtualenv in which scripts/vllm_oracle/capture.py runs vLLM's own serving code.
#
#   scripts/vllm_oracle/setup.sh VERSION [--venv DIR] [--vocab DIR]
#
# VERSION is a vLLM release with a pinned list beside this script (requirements-VERSION.txt):
# 0.33.0 or 0.22.1. The environment lives outside the repository, by default in
# ${TMPDIR:-/tmp}/agent-runtime-vllm-oracle-VERSION (or $AGENT_RUNTIME_ORACLE_VENV). It must stay
# separate from the project's: vLLM >= 0.31 needs `oss-harmony`, which installs the same
# `openai_harmony` module as the project's `openai-harmony` and overwrites it.
#
# vLLM is installed with --no-deps (no torch, no CUDA): capture.py stubs the modules that need
# them (shim.py). Everything else comes from the pinned list, also with --no-deps, so the same
# list gives the same environment and the same fixtures.
#
# --vocab DIR (or $TIKTOKEN_ENCODINGS_BASE): a folder holding o200k_base.tiktoken. openai-harmony
# 0.0.8 (vLLM 0.22.1) reads the vocabulary from there and cannot download it on a machine without
# general network access; oss-harmony (vLLM 0.33.0) embeds it. Default: ../shared/vocab beside
# the repository, when it exists. Only the final smoke test uses it; capture.py takes the same
# option.
#
# Python: $AGENT_RUNTIME_ORACLE_PYTHON, default python3.11 (vLLM 0.33 needs >= 3.11).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

usage() {
    echo "usage: $0 VERSION [--venv DIR] [--vocab DIR]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
version="$1"
shift
venv="${AGENT_RUNTIME_ORACLE_VENV:-${TMPDIR:-/tmp}/agent-runtime-vllm-oracle-$version}"
vocab="${TIKTOKEN_ENCODINGS_BASE:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv="$2"; shift 2 ;;
        --vocab) vocab="$2"; shift 2 ;;
        *) usage ;;
    esac
done
if [ -z "$vocab" ] && [ -f "$repo/../shared/vocab/o200k_base.tiktoken" ]; then
    vocab="$(cd "$repo/../shared/vocab" && pwd)"
fi

requirements="$here/requirements-$version.txt"
if [ ! -f "$requirements" ]; then
    echo "Error: no pinned dependency list for vLLM $version ($requirements)." >&2
    echo "Known versions: $(cd "$here" && ls requirements-*.txt | sed 's/requirements-//; s/\.txt//' | tr '\n' ' ')" >&2
    exit 2
fi
case "$venv" in
    "$repo"/*) echo "Error: the oracle venv must live outside the repository: $venv" >&2; exit 2 ;;
esac

python="${AGENT_RUNTIME_ORACLE_PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install --no-deps "vllm==$version"
"${pip[@]}" install --no-deps -r "$requirements"

echo "Checking that vLLM $version imports with the shims..."
TIKTOKEN_ENCODINGS_BASE="$vocab" "$venv/bin/python" "$here/capture.py" "$version" --check \
    ${vocab:+--vocab "$vocab"}
echo "Ready: $venv/bin/python $here/capture.py $version${vocab:+ --vocab $vocab}"
