"""The one exception type of the registration package."""

from __future__ import annotations

from typing import Any

from decongan.engine.errors import DeconganError


class RegistrationError(DeconganError, ValueError):
    """Registration is impossible or failed.

    Attributes
    ----------
    which : str or None
        The input to blame ("moving" or "fixed"), so a front-end can name the file.
    result : RegistrationResult or None
        The (poor) result when the optimisation ran but failed its quality check.
    """

    def __init__(self, message: str, *, which: str | None = None, result: Any = None) -> None:
        super().__init__(message)
        self.which = which
        self.result = result
