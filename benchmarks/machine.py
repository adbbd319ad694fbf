"""What every benchmark records beside its numbers: the machine, the software, the load, the
date and the command; and where results go."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(packages: tuple[str, ...] = ()) -> dict:
    """CPU, thread count, native bf16, versions and the 1/5/15-minute load average now."""
    from audiodiff.precision import cpu_has_fast_bf16

    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "native_bf16": cpu_has_fast_bf16(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in packages},
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command() -> str:
    """How this benchmark was started, for the record."""
    module = sys.modules["__main__"].__spec__
    program = f"python -m {module.name}" if module is not None else f"python {sys.argv[0]}"
    return " ".join([program, *sys.argv[1:]])


PER_CALL = ("seed", "seeds", "conditions", "rest")


def sampling_record(settings, **extra) -> dict:
    """What a generate call used (`out.settings.to_dict()`), less what changes from call to call
    (seeds and conditions), with `extra` (the vocoder, say): the settings a result states."""
    return {**{key: value for key, value in settings.to_dict().items() if key not in PER_CALL}, **extra}


def write_result(result: dict, out: str | os.PathLike) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return out
