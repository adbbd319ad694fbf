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
# The real-recording corpora (`audiodiff data drums|voices|music`) come from these Debian packages.
# CI sets AUDIODIFF_SKIP_CORPORA=1: the default tests make their own small fake package trees.
CORPORA=(hydrogen-drumkits sonic-pi-samples avldrums.lv2-soundfont ffmpeg festival
  asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722
  asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722
  festvox-kallpc16k festvox-kdlpc16k festvox-itapc16k festvox-italp16k festvox-suopuhe-lj festvox-ru
  wesnoth-1.16-music warzone2100-music nexuiz-music)
if [ "${AUDIODIFF_SKIP_CORPORA:-0}" != 1 ]; then
  for package in "${CORPORA[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || need+=("$package")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing Debian packages: ${need[*]}"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[${AUDIODIFF_EXTRAS:-dev,demo,onnx}]"
