import os

import pytest
import torch

# one thread count for every training in the suite and its subprocesses (train.threads=0 would
# otherwise follow the load average, and runs compared bit for bit must compute alike)
os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))

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


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' scan caches out of the user's ~/.cache."""
    import os

    old = os.environ.get("AUDIODIFF_CACHE_DIR")
    os.environ["AUDIODIFF_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("AUDIODIFF_CACHE_DIR", None)
    else:
        os.environ["AUDIODIFF_CACHE_DIR"] = old
