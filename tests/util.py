"""Small builders shared by the tests: tiny configs on tiny data, trained in seconds."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest
import torch

from audiodiff.audio import save_audio
from audiodiff.config import DiffusionRunConfig, from_dict


def tone(freq: float, seconds: float = 0.5, sample_rate: int = 16000, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * torch.sin(2 * math.pi * freq * t))[None]


def write_clip(folder: Path, name: str, audio: torch.Tensor, sample_rate: int = 16000) -> Path:
    return save_audio(Path(folder) / name, audio, sample_rate)


def tiny_config(data_path, out_dir, dims: int = 2, seconds: float = 0.25, **sections) -> DiffusionRunConfig:
    """A very small U-Net on `data_path`; `sections` update the config dict (section -> dict)."""
    data = {
        "kind": "diffusion",
        "data": {
            "path": str(data_path),
            "representation": "mel" if dims == 2 else "wave",
            "segment_seconds": seconds,
            "split": None,
        },
        "model": {
            "dims": dims,
            "channels": 16,
            "channel_mults": [1, 2],
            "num_res_blocks": 1,
            "attention_levels": [1],
            "head_channels": 16,
        },
        "conditioning": {},
        "sampling": {"steps": 10, "griffin_lim_iters": 8},
        "train": {
            "out_dir": str(out_dir),
            "steps": 4,
            "batch_size": 4,
            "lr": 1e-3,
            "warmup_steps": 2,
            "ckpt_every": 2,
            "preview_every": 0,
            "log_every": 1,
            "precision": "fp32",
        },
    }
    if dims == 1:
        data["model"].update(patch_size=8, kernel_size=3)
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return from_dict(DiffusionRunConfig, data)


CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh does)"
)


@contextlib.contextmanager
def browser_page(url: str, height: int = 1400):
    """A headless Debian chromium page at `url` (Playwright; the test is skipped without it), and
    the `playwright.sync_api` module for its `expect`."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.goto(url)
            yield page, sync_api
        finally:
            browser.close()
