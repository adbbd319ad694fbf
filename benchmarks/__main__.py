"""Run every benchmark and combine their JSON into `benchmarks/results/all.json`.

Each benchmark runs in its own process (its own threads and memory) and writes its own JSON as
well; one that fails is recorded with its exit status and the end of its output. Time them with
the background training paused:

    AUDIODIFF_PAUSE_TRAINING=1 benchmarks/quiet.sh python -m benchmarks [--only NAME,...] [--checkpoint C] [--quick]
    python -m benchmarks.figures     # then refresh the README's Figures section
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import RESULTS, command, machine_info, now, write_result

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Benchmark:
    module: str
    args: list[str]  # the full run
    quick: list[str]  # a short trial run with the same code paths
    needs_checkpoint: bool = False


BENCHMARKS: dict[str, Benchmark] = {
    "vocoder_speed": Benchmark("benchmarks.vocoder_speed", [], ["--budget", "2", "--max-repeats", "2"]),
    "unet_vs_peers": Benchmark("benchmarks.unet_vs_peers", [], ["--rounds", "1", "--bf16-rounds", "1"]),
    "samplers": Benchmark("benchmarks.samplers", [], ["--per-label", "1", "--steps", "4,8"], needs_checkpoint=True),
    "end_to_end": Benchmark("benchmarks.end_to_end", [], ["--rounds", "1"], needs_checkpoint=True),
}


def run(name: str, benchmark: Benchmark, checkpoint: str | None, quick: bool, results: Path) -> dict:
    """Run one benchmark as a subprocess; its JSON, or why there is none."""
    out = results / f"{name}.json"
    shown = os.path.relpath(out, ROOT) if out.resolve().is_relative_to(ROOT) else str(out)
    args = [sys.executable, "-m", benchmark.module, *(benchmark.quick if quick else benchmark.args), "--out", shown]
    if benchmark.needs_checkpoint and checkpoint:
        args += ["--checkpoint", checkpoint]
    print(f"== {name}: {' '.join(args[1:])}", flush=True)
    start = time.perf_counter()
    process = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(process.stdout, flush=True)
    if process.returncode != 0 or not out.is_file():
        return {"error": f"exit status {process.returncode}", "output_tail": process.stdout[-3000:]}
    result = json.loads(out.read_text())
    result.setdefault("command", " ".join(["python -m", *args[2:]]))
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--checkpoint", help="model for samplers and end_to_end (default: the bundled digits model)")
    parser.add_argument("--quick", action="store_true", help="short trial settings (numbers not for reporting)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {list(BENCHMARKS)}")
    combined_path = args.results / "all.json"
    earlier = json.loads(combined_path.read_text()).get("benchmarks", {}) if combined_path.is_file() else {}
    fresh = {name: run(name, BENCHMARKS[name], args.checkpoint, args.quick, args.results) for name in names}
    combined = {
        "benchmark": "all",
        "date": now(),
        "command": command(),
        "quick": args.quick,
        "machine": machine_info(("diffusers", "audio-diffusion-pytorch")),
        # with --only, the other benchmarks keep their earlier results (each carries its own date)
        "benchmarks": {
            name: fresh.get(name, earlier.get(name)) for name in BENCHMARKS if name in fresh or name in earlier
        },
    }
    failed = [name for name, result in fresh.items() if "error" in result]
    write_result(combined, combined_path)
    if failed:
        print(f"failed: {failed} (see their output above and all.json)")
        sys.exit(1)


if __name__ == "__main__":
    main()
