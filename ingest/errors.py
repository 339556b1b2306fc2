"""Errors that cross module boundaries; each message says what to do."""

from __future__ import annotations


class MissingDependency(RuntimeError):
    """A package the work needs is not installed. Never turned into a skipped document."""

    def __init__(self, package: str, needed_for: str, cause: BaseException | None = None, install: str | None = None):
        self.package = package
        detail = f" ({cause.__class__.__name__}: {cause})" if cause else ""
        super().__init__(
            f"The package '{package}' is needed for {needed_for} but cannot be imported{detail}. "
            f"Install it with: pip install {install or package}"
        )


class ClusterError(RuntimeError):
    """A cluster the work was sent to (Ray) could not be reached or failed the job."""
