#!/usr/bin/env bash
# The whole digits-fast chain: guidance distillation, then progressive halving down to one step.
# Every stage resumes if it was stopped (--resume is harmless on a fresh run directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
audiodiff train --config recipes/digits-fast/config.yaml --resume "$@"
teacher=runs/digits-fast/guidance
for steps in 8 4 2 1; do
  audiodiff train --config recipes/digits-fast/progressive.yaml --resume distill.teacher=$teacher \
    distill.student_steps=$steps train.out_dir=runs/digits-fast/steps-$steps "$@"
  teacher=runs/digits-fast/steps-$steps
done
