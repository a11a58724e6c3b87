"""Errors a user can cause or fix; entry points print them as one line and exit with ``exit_code``."""

from __future__ import annotations


class HybridRecError(Exception):
    """Base class: an expected failure with a message written for the person running the command."""

    exit_code = 1
    retry_after_s: int | None = (
        None  # set where the failure passes (an outage, a busy service): the API's Retry-After
    )


class InvalidInputError(HybridRecError, ValueError):
    """A request or command-line value is out of bounds (unknown id, empty text, bad number)."""

    exit_code = 2


class UnknownIdError(InvalidInputError, KeyError):
    """A user or item id that the data or the bundle does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(HybridRecError):
    """Data could not be fetched, verified or parsed."""


class ConfigError(HybridRecError):
    """A configuration value that cannot work (a wrong metric name, an impossible setting)."""

    exit_code = 2


class BusyError(HybridRecError):
    """The service is at its limit for this kind of work: try again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s
