#!/usr/bin/env bash
# Run a benchmark with background training paused: SIGSTOP every `audiodiff train` process, run
# the command, SIGCONT them again (also on error or Ctrl-C). Timings then share the machine with
# nothing of ours.   usage: benchmarks/quiet.sh python benchmarks/unet_speed.py
set -u
pids=$(pgrep -f "audiodiff train|audiodiff.cli train|-m audiodiff train" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids && echo "paused training: $pids" >&2
"$@"
