#!/usr/bin/env bash
# Set up exposure-ctrl in ./.venv and run it.
#
#   scripts/dev.sh run [OPTIONS]   set up, then run the main job (a complete simulated session)
#   scripts/dev.sh test [ARGS]     set up (with test tools), then run the whole test suite
#   scripts/dev.sh setup           set up only
#
# torch is installed FIRST and pinned to 2.13.0: on machines that carry the 2.13.0 CPU wheel in a
# local wheel directory this takes minutes instead of pulling several GB of CUDA packages;
# elsewhere pip takes torch 2.13.0 from the package index, and if that version does not exist
# for this Python, any torch >= 2.2.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
mode=${1:-run}
[ $# -gt 0 ] && shift

log() { printf '\033[1m[exposure-ctrl setup]\033[0m %s\n' "$*" >&2; }

setup() {
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  if ! python -c "import torch" >/dev/null 2>&1; then
    log "installing torch 2.13.0 (CPU build where available)"
    { python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.2"; } 2>&1 \
      | grep -v "is ignored: it is neither a file" >&2 || true
    python -c "import torch" >/dev/null 2>&1 || { log "torch could not be installed"; exit 1; }
  fi
  log "installing exposure-ctrl$extras"
  python -m pip install -q -e ".$extras" 2>&1 | grep -v "is ignored: it is neither a file" >&2 || true
  python -c "import exposure_ctrl" || { log "installation failed"; exit 1; }
}

system_test_tools() {
  # Tools some tests drive for real: mono (C# side of the Unity bridge), chromium (reports and
  # the console in a real browser). Installed when we may (root with apt-get); otherwise those
  # tests skip locally and say why. CI sets CI=true, and there they fail instead of skipping.
  local need=()
  command -v mcs >/dev/null 2>&1 || need+=(mono-mcs mono-runtime)
  command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
  if [ ${#need[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "installing system packages for the tests: ${need[*]}"
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || log "could not install ${need[*]}: the tests that need them will skip (or fail under CI)"
    else
      log "not installing ${need[*]} (needs root and apt-get): the tests that need them will skip"
    fi
  fi
}

case "$mode" in
  setup)
    setup "[dev]"
    ;;
  run)
    setup ""
    exec exposure-ctrl run "$@"
    ;;
  test)
    setup "[dev]"
    system_test_tools
    # Compile the numba kernels once up front, so that no test (nor a controller started as a
    # subprocess by a test) pays the compilation inside its own time limit.
    log "compiling the numba kernels"
    python scripts/warm_kernels.py
    set +e
    python -m pytest "$@"
    rc=$?
    set -e
    if [ $rc -eq 5 ]; then
      log "pytest collected no tests: that is a broken suite, not a pass"
      exit 1
    fi
    exit $rc
    ;;
  *)
    echo "usage: scripts/dev.sh run|test|setup [ARGS...]" >&2
    exit 2
    ;;
esac
