"""Errors with a one-line message meant for the person running the suite."""


class RelcheckError(Exception):
    """Base: str(error) is one line naming the problem."""


class TargetError(RelcheckError):
    """The target could not be started or reached (service, database, authentication, timeout)."""


class ToolError(RelcheckError):
    """A tool the suite runs (pytest, coverage, bandit, locust, pg_dump ...) failed or is missing."""
