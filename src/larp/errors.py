"""The failures a stage expects and explains: bad parameters, bad data, a missing optional dependency, a diverged
loss. Each derives from :class:`ExpectedError`, so a stage script prints the message and exits with code 2 instead
of a traceback (``larp.cli.run``). A bottom module: it imports nothing of the library, and any module may import it.
"""


class ExpectedError(Exception):
    """An expected, explained failure: its message names the problem and what to do."""


class ParamsError(ExpectedError, ValueError):
    """Invalid parameters. The message lists every problem with its key path."""


class StageError(ExpectedError, RuntimeError):
    """An expected, explained failure of a stage (bad input data, mismatched inputs, missing optional dependency...)."""


class DatasetError(ExpectedError, ValueError):
    """The dataset on disk does not match what params.yaml says; the message names the path and what is expected."""


class NonFiniteLoss(ExpectedError, FloatingPointError):
    """Training produced a NaN or infinite loss; a checkpoint from before that step is kept."""


class LPIPSUnavailable(ExpectedError, RuntimeError):
    """`lpips`, torchvision or the VGG backbone weights cannot be loaded."""
