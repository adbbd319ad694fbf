"""Killed training (SIGKILL at random moments, during checkpoint writes too) resumes with
`--resume` from the newest complete checkpoint and ends with the weights of an uninterrupted run,
in one process and under torchrun with two.

Kill moments come from a seeded RNG (AUDIODIFF_RELIABILITY_SEED); AUDIODIFF_RELIABILITY_TRIALS
sets the number of kills in one process (default 5). To land inside a checkpoint write, the
test-only AUDIODIFF_TEST_SLOW_CHECKPOINT makes each checkpoint file take that many seconds.
"""

import random
import signal
import time

from audiodiff.checkpoint import SLOW_WRITE_ENV
from tests.reliability.conftest import TORCHRUN_STEPS
from tests.reliability.helpers import (
    SEED,
    TRIALS,
    Launcher,
    assert_checkpoints_complete,
    assert_same_checkpoint,
    logged_steps,
    losses,
    newest,
    output,
    partial_writes,
    recipe,
    record,
    wait_for,
)

STEPS = 12 if TRIALS <= 5 else 2 * TRIALS + 4  # room for every trial to find a checkpoint still ahead of it
KINDS = ["step", "write", "startup", "write", "step"]  # then repeated; every kill moment is random
SLOW = 0.15  # seconds per checkpoint file while a write is being targeted (4 files)


def _kill_when_due(kind: str, process, run, launched: float, resumed_step: int, rng: random.Random) -> dict:
    """Wait for the moment `kind` picks at random, SIGKILL the process, and say what it was doing."""
    if kind == "write":
        target = min(
            s for s in range(2, STEPS, 2) if s > resumed_step
        )  # the next write; the moment within it is random
        assert wait_for(
            lambda: any(p.startswith(f"step_{target:08d} ") for p in partial_writes(run)), 120, process=process
        ), target
        time.sleep(rng.uniform(0, 5 * SLOW))
        moment = {"checkpoint": target}
    elif kind == "step":
        target = rng.randint(
            resumed_step + 1, min(resumed_step + 2, STEPS - 2)
        )  # soon, so later trials keep steps to kill
        log = run / "log.jsonl"

        def reached() -> bool:  # records of this launch (a resume first trims the log to its checkpoint)
            return log.is_file() and log.stat().st_mtime > launched and logged_steps(run) >= target

        assert wait_for(reached, 120, process=process), target
        time.sleep(rng.uniform(0, 0.1))
        moment = {"after_step": target}
    else:  # start-up: imports are preloaded, so this is scan, build and resume
        deadline = launched + rng.uniform(0.05, 0.6)
        log = run / "log.jsonl"
        # on a fast machine the few steps left can finish inside the window: kill at the first step at the latest
        while time.time() < deadline and not (log.is_file() and log.stat().st_mtime > launched):
            time.sleep(0.005)
        moment = {"seconds_after_start": round(time.time() - launched, 2)}
    moment["logged_step"] = logged_steps(run)
    if kind == "write":
        moment["writing"] = partial_writes(run)
    process.kill()
    process.join()
    return moment


def _kind(trial: int, resumed_step: int) -> str:
    kind = KINDS[trial % len(KINDS)]
    if kind == "write" and not any(s > resumed_step for s in range(2, STEPS, 2)):
        kind = "step"
    if kind == "step" and resumed_step + 1 > STEPS - 2:
        kind = "startup"
    return kind


def test_killed_training_resumes_from_the_newest_complete_checkpoint(tmp_path, synth_dir):
    launcher = Launcher()
    base = recipe(tmp_path / "base.yaml", synth_dir, tmp_path / "base", steps=STEPS)
    process = launcher.start(["train", "--config", base, "--no-progress"], tmp_path / "base")
    process.join(600)
    assert process.exitcode == 0, output(tmp_path / "base")[1][-3000:]

    run = tmp_path / "run"
    config = recipe(tmp_path / "run.yaml", synth_dir, run, steps=STEPS)
    rng = random.Random(SEED)
    command = ["train", "--config", config, "--no-progress", "--resume"]
    trials = []
    for trial in range(TRIALS + 1):
        expected = newest(run)
        resumed_step = int(expected.name.split("_")[1]) if expected else 0
        kind = _kind(trial, resumed_step) if trial < TRIALS else "finish"
        out = tmp_path / f"launch{trial}"
        launched = time.time()
        process = launcher.start(command, out, {SLOW_WRITE_ENV: str(SLOW)} if kind == "write" else {})
        if kind == "finish":
            process.join(600)
            assert process.exitcode == 0, output(out)[1][-3000:]
            moment = {}
        else:
            moment = _kill_when_due(kind, process, run, launched, resumed_step, rng)
            assert process.exitcode == -signal.SIGKILL, f"trial {trial} ({kind}) ended before the kill"
        stderr = output(out)[1]
        if "resumed from" in stderr or "no checkpoint" in stderr:  # absent only if killed before it resumed
            said = f"resumed from {expected} (step {resumed_step})" if expected else "no checkpoint in"
            assert said in stderr, f"trial {trial}: expected {said!r}:\n{stderr[-2000:]}"
        assert_checkpoints_complete(run)
        trials.append(
            {"kind": kind, "resumed_from": resumed_step, **moment, "newest_after": getattr(newest(run), "name", None)}
        )

    record("killed_training", trials=trials, steps=STEPS)
    assert sum(t["kind"] == "write" for t in trials) >= min(2, TRIALS)
    final, reference = newest(run), newest(tmp_path / "base")
    assert final.name == reference.name == f"step_{STEPS:08d}"
    assert_same_checkpoint(final, reference)
    assert losses(run) == losses(tmp_path / "base")  # the resumed run's log reads as one run


# --------------------------------------------------------------------------------------------
# torchrun, two CPU processes: one run, interrupted twice (the whole launch killed during a
# checkpoint write; one rank SIGKILLed), then finished; the second interruption is also the
# rank-death test (test_distributed_faults.py); the fixture, torchrun_chain, is in conftest.py.


def test_torchrun_killed_run_resumes_to_the_same_weights(torchrun_chain):
    facts = torchrun_chain
    assert facts["base_returncode"] == 0, output(facts["outputs"] / "base")[1][-3000:]
    assert facts["final_returncode"] == 0, output(facts["outputs"] / "final")[1][-3000:]
    resumed = facts["final_resumed_from"]
    assert resumed is not None and f"resumed from {resumed}" in output(facts["outputs"] / "final")[1]
    final, reference = newest(facts["run"]), newest(facts["base"])
    assert final.name == reference.name == f"step_{TORCHRUN_STEPS:08d}"
    assert_same_checkpoint(final, reference)
    assert losses(facts["run"]) == losses(facts["base"])
