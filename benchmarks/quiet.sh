#!/usr/bin/env bash
# Run a benchmark with background training paused (only when AUDIODIFF_PAUSE_TRAINING=1): SIGSTOP
# every `audiodiff train` process, run the command, SIGCONT them again (also on error or Ctrl-C).
#   usage: AUDIODIFF_PAUSE_TRAINING=1 benchmarks/quiet.sh python benchmarks/unet_speed.py
set -u
pids=""
if [ "${AUDIODIFF_PAUSE_TRAINING:-0}" = 1 ]; then
  pids=$(pgrep -f "audiodiff train|audiodiff.cli train|-m audiodiff train" || true)
fi
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids && echo "paused training: $pids" >&2
"$@"
