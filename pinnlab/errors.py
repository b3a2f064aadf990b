"""Error types. Every error says what was given, what was expected and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PinnlabError(Exception):
    """Base class: the command line prints these as one line, without a traceback."""


class UnknownNameError(PinnlabError, KeyError):
    """An id (problem, method, network, activation, ...) that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ParameterError(PinnlabError, ValueError):
    """A problem parameter that does not exist or is out of range."""


class ConfigError(PinnlabError, ValueError):
    """An invalid run configuration: unknown key, wrong type or out-of-range value."""


class AccuracyWarning(UserWarning):
    """A run ended without having learnt what it was asked to (e.g. worse than a constant)."""


class IdentifiabilityWarning(UserWarning):
    """An inverse problem's unknowns that its data or its equation cannot determine (an
    unknown no residual reads, unknowns without observations)."""


class FormError(PinnlabError, TypeError):
    """A solver was given a problem that lacks the form it needs."""


class ShapeError(PinnlabError, ValueError):
    """Points of the wrong shape."""


class TrainingError(PinnlabError, RuntimeError):
    """Training could not go on (repeated non-finite losses, a mismatched checkpoint)."""


class SolutionFileError(PinnlabError, OSError):
    """A solution file that is missing, corrupt, truncated or not a pinnlab file."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    """The uniform error for an unknown id, with a did-you-mean and the full list."""
    choices = sorted(choices)
    return UnknownNameError(
        f"unknown {kind} '{name}'.{did_you_mean(name, choices)} "
        f"Available: {', '.join(choices) if choices else '(none)'}."
    )
