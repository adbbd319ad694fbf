"""`UserError`: the base of every error a user can fix (input, config, data, checkpoint). The
command line and the demo show its message instead of a traceback."""

__all__ = ["UserError"]


class UserError(Exception):
    """Bad input rather than a bug; the message names the file or value and the fix. Each
    subclass keeps its own built-in base (ValueError or RuntimeError) beside this one."""
