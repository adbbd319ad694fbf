import pytest
import torch

from audiodiff.data.synth import build_synthetic


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """Four classes of synthetic sounds, 6 clips each, 0.5 s at 16 kHz."""
    folder = tmp_path_factory.mktemp("synth")
    build_synthetic(folder, per_class=6, seconds=0.5)
    return folder
