"""Fixtures shared by the reliability tests."""

import random
import time

import pytest

from audiodiff.checkpoint import SLOW_WRITE_ENV
from audiodiff.train.trainer import DIE_AT_STEP_ENV, DIE_RANK_ENV
from tests.reliability.helpers import (
    SEED,
    assert_checkpoints_complete,
    children,
    kill_group,
    logged_steps,
    newest,
    output,
    partial_writes,
    pid_alive,
    recipe,
    record,
    torchrun,
    wait_for,
)

TORCHRUN_STEPS = 4


@pytest.fixture(scope="session")  # one chain for test_killed_training and test_distributed_faults
def torchrun_chain(tmp_path_factory, synth_dir):
    root = tmp_path_factory.mktemp("torchrun")
    rng = random.Random(SEED + 1)
    base = recipe(root / "base.yaml", synth_dir, root / "base", steps=TORCHRUN_STEPS, batch_size=1)
    config = recipe(root / "run.yaml", synth_dir, root / "run", steps=TORCHRUN_STEPS, batch_size=1)
    command = ["train", "--config", config, "--no-progress", "--resume"]
    facts = {"base": root / "base", "run": root / "run", "outputs": root}

    launch = torchrun(["train", "--config", base, "--no-progress"], root / "base")
    facts["base_returncode"] = launch.wait(600)

    # 1. the whole launch (agent and both workers) killed at a random moment of the step-2 write
    launch = torchrun(command, root / "kill", {SLOW_WRITE_ENV: "0.2"})
    assert wait_for(
        lambda: any(p.startswith("step_00000002 ") for p in partial_writes(root / "run")), 300, process=launch
    )
    time.sleep(rng.uniform(0, 1.0))
    facts["kill"] = {"writing": partial_writes(root / "run"), "logged_step": logged_steps(root / "run")}
    kill_group(launch)
    facts["kill"]["newest_after"] = getattr(newest(root / "run"), "name", None)
    assert_checkpoints_complete(root / "run")

    # 2. rank 1 SIGKILLs itself before step 3; torchrun must stop rank 0 and report rank 1
    facts["death_resumed_from"] = newest(root / "run")
    started = time.monotonic()
    launch = torchrun(command, root / "death", {DIE_AT_STEP_ENV: "3", DIE_RANK_ENV: "1"})
    workers: set[int] = set()
    while launch.poll() is None and time.monotonic() - started < 300:
        workers.update(children(launch.pid))
        time.sleep(0.05)
    dead_at = time.monotonic()
    try:
        launch.wait(120)
    except Exception:
        kill_group(launch)
        raise
    facts["death"] = {
        "returncode": launch.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "workers_alive_after": [pid for pid in workers if pid_alive(pid)],
        "stderr": output(root / "death")[1],
        "workers_seen": len(workers),
        "wait_after_poll": round(time.monotonic() - dead_at, 2),
    }
    assert_checkpoints_complete(root / "run")

    # 3. resume and finish
    facts["final_resumed_from"] = newest(root / "run")
    launch = torchrun(command, root / "final")
    facts["final_returncode"] = launch.wait(600)
    record(
        "torchrun_killed_training",
        kill=facts["kill"],
        death={k: v for k, v in facts["death"].items() if k != "stderr"},
        final_resumed_from=getattr(facts["final_resumed_from"], "name", None),
    )
    return facts
