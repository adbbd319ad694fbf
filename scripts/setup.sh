#!/usr/bin/env bash
# Install what audiodiff needs on a fresh Debian/Ubuntu machine: system packages for the dataset
# builders (espeak-ng, fluidsynth + a General MIDI soundfont) and the browser test (chromium),
# then the package itself with its extras. Safe to run again; skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v fluidsynth >/dev/null || need+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
if [ "${AUDIODIFF_SKIP_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[${AUDIODIFF_EXTRAS:-dev,demo,onnx}]"
