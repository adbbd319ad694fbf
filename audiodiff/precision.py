"""Which floating-point format a model runs in: `autocast_dtype` turns a precision name into the
autocast dtype for a device, shared by training (`train.precision`) and sampling
(`Pipeline(precision=)`), so "auto" means the same thing in both."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "autocast_dtype", "cpu_has_fast_bf16"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16
    autocast falls back to slow reference kernels (measured 30x slower than fp32 on AVX2)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` ("auto", "fp32", "bf16" or "fp16") on `device`; None
    means plain fp32. "auto" is bf16 where the hardware has it natively (a CUDA GPU with bf16, a
    CPU with AVX512-BF16 or AMX), fp16 on older GPUs, fp32 on other CPUs."""
    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; use bf16 or fp32 here")
    if precision not in PRECISIONS:
        raise ValueError("not a precision; use auto, fp32, bf16 or fp16")
    return torch.bfloat16 if precision == "bf16" else torch.float16
