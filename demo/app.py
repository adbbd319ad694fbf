"""The Gradio page: `python demo/app.py [CHECKPOINT_DIR ...]` (same as `audiodiff demo --checkpoint ...`)."""

import sys

from audiodiff.demo import launch

launch(sys.argv[1:])
