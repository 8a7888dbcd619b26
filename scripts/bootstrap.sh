#!/usr/bin/env bash
# Set up DeconGAN in ./.venv and run one job.
#   bash scripts/bootstrap.sh demo [--out DIR]   set up, then run the demo comparison (headless)
#   bash scripts/bootstrap.sh test [pytest args]  set up, then run the test suite
#   bash scripts/bootstrap.sh setup               set up only
# Works on a fresh Debian machine with Python >= 3.10. As root it also installs the system packages
# the tests and the Fiji bridge use (Debian's ImageJ 1.x, a JDK, Xvfb and Qt's X libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-setup}
[ $# -gt 0 ] && shift

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# 1. System packages (root only; otherwise say what is missing and carry on).
apt_packages=(libij-java openjdk-17-jdk-headless xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0
              libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-shape0 libxcb-render-util0 libxcb-image0
              libegl1 libgl1 libfontconfig1 libdbus-1-3)
if command -v dpkg >/dev/null 2>&1; then
    missing=()
    for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing system packages: ${missing[*]}"
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            log "not root: system packages not installed (${missing[*]}); Fiji/GUI tests may skip"
        fi
    fi
fi

# 2. Virtual environment.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($PY --version 2>&1)"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# 3. torch: CPU build where there is no NVIDIA GPU (never torchvision).
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        log "NVIDIA GPU found: installing torch with CUDA from PyPI"
        "$VPY" -m pip install -q "torch>=2.6"
    elif "$VPY" -m pip install -q "torch==2.13.0+cpu" >/dev/null 2>&1; then
        # a CPU wheel pip can already see (a find-links folder or a local mirror); PyPI has no "+cpu"
        # builds, so elsewhere this fails fast and the CPU index below is used
        log "no GPU: installed the CPU build of torch 2.13.0 found by pip's configuration"
    else
        log "no GPU: installing the CPU build of torch from download.pytorch.org"
        "$VPY" -m pip install -q "torch>=2.6" --index-url https://download.pytorch.org/whl/cpu
    fi
fi

# 4. DeconGAN itself (editable) with the Fiji bridge, the GUI and the test tools; skipped when unchanged.
stamp=.venv/.decongan-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing decongan and its dependencies into .venv"
    "$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VPY" -m pip install -q -e ".[all,dev]"
    echo "$want" > "$stamp"
fi

# 5. Java for the Fiji bridge: use the system JDK, never a download.
if [ -z "${JAVA_HOME:-}" ]; then
    for jdk in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/default-java; do
        if [ -x "$jdk/bin/java" ]; then export JAVA_HOME=$jdk; break; fi
    done
fi

case "$job" in
    setup) log "ready: .venv/bin/decongan --help" ;;
    demo) exec .venv/bin/decongan demo "$@" ;;
    test)
        .venv/bin/lint-imports --no-cache >&2 || { log "layering contracts broken (lint-imports)"; exit 1; }
        .venv/bin/ruff check . >&2 || { log "ruff found problems"; exit 1; }
        exec "$VPY" -m pytest "$@" ;;
    *) echo "usage: bash scripts/bootstrap.sh {setup|demo|test} [args]" >&2; exit 2 ;;
esac
