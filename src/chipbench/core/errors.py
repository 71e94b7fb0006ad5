"""Errors that reach the user as one line and an exit code."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""

    exit_code = 2


class DoesNotFit(UsageError):
    """The estimated memory need of a benchmark exceeds what the device has free."""


class StartFailed(Exception):
    """The benchmark worker (or distributed job) could not start: one line, exit code 1."""

    exit_code = 1
