"""Watching a run from outside: every loss term, the learning rate, the error and the solver's
diagnostics (an inverse problem's unknowns) written to a TensorBoard log (``train.log:
tensorboard``; docs/training.md).

``tensorboard`` is an optional dependency (``pip install "pinnlab[tensorboard]"``); the
writer is torch's own (``torch.utils.tensorboard.SummaryWriter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError


class TensorBoard:
    """A TensorBoard event log in ``folder``: scalars by step, with "." in a name read as a
    group ("loss.residual" is shown as loss/residual)."""

    def __init__(self, folder: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer needs the tensorboard package
            raise ConfigError(
                "train.log: tensorboard needs the tensorboard package: "
                'pip install "pinnlab[tensorboard]" (or pip install tensorboard), or set '
                "train.log: none."
            ) from None
        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name.replace(".", "/"), value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
