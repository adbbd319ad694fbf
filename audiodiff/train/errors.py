"""`TrainingError`: a training run that cannot go on (the trainer, its checkpoints and the tasks raise it)."""

from audiodiff.errors import UserError

__all__ = ["TrainingError"]


class TrainingError(UserError, RuntimeError):
    """A run that cannot go on; the message says why and what to change."""
