#!/usr/bin/env bash
# Sets up everything the studio needs on a fresh Debian machine with Python 3.11 or 3.12:
# system packages (ffmpeg; with --browser also Chromium for the browser test) and a virtual environment in .venv.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

apt_packages=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_packages+=(ffmpeg)
# pyworld (the voice-cloning vocoder) is built from source: it needs a C++ compiler and Python's headers
command -v g++ >/dev/null || apt_packages+=(g++)
# dubbing translates English <-> Spanish offline with Apertium (rule-based, GPL)
command -v apertium >/dev/null || apt_packages+=(apertium)
[ -f /usr/share/apertium/modes/eng-spa.mode ] || apt_packages+=(apertium-eng-spa)
"${PYTHON:-python3}" -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" \
  2>/dev/null || apt_packages+=(python3-dev)
if [ "$want_browser" = 1 ]; then
  [ -x /usr/bin/chromium ] || apt_packages+=(chromium)
  [ -x /usr/bin/chromedriver ] || apt_packages+=(chromium-driver)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "installing system packages: ${apt_packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch first and pinned: 2.13.0 is the CPU build where a local wheel exists; elsewhere pip's default build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "torch==${STUDIO_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
fi
# torchaudio (for the Perth audio watermark) next to torch: the registry's newest, 2.11.1, accepts torch>=2.11
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchaudio') is None)" 2>/dev/null; then
  "${PIP[@]}" install "torchaudio==${STUDIO_TORCHAUDIO_VERSION:-2.11.1}" 2>&1 | grep -v "^WARNING: Location" || true
fi
"${PIP[@]}" install -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
# That torchaudio wheel is a CUDA build: its C++ extension cannot load next to the CPU build of torch, and then
# `import torchaudio` fails (and Perth silently disables itself). Perth needs only torchaudio's pure-Python
# transforms, which work without the extension, so on such a machine the extension's libraries are removed.
if ! .venv/bin/python -c "import torchaudio" 2>/dev/null; then
  ta_lib=$(.venv/bin/python -c "import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec('torchaudio').origin), 'lib'))")
  echo "torchaudio's C++ extension does not match this torch build; using torchaudio without it ($ta_lib)"
  rm -f "$ta_lib"/*.so
fi
.venv/bin/python -c "import perth, sys; sys.exit(perth.PerthImplicitWatermarker is None)" 2>/dev/null \
  || { echo "the audio watermark (resemble-perth) cannot load: check setuptools<81 and torchaudio" >&2; exit 1; }
# mediapipe 0.10.21 is the last release that ships its face models; its metadata pins numpy<2 and pulls jax,
# none of which it needs for the face mesh, so it goes in without dependencies (they are in pyproject.toml).
"${PIP[@]}" install --no-deps "mediapipe==0.10.21" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import studio, torch, mediapipe, cv2, soundfile, piper; print('studio set up: torch', torch.__version__)"
