"""The one error ``optml check`` raises for input it cannot use."""

from __future__ import annotations


class CheckInputError(Exception):
    """Bad input to a check run (missing image, unreadable file, invalid job): the message
    names the image, file or field, and nothing was left running."""
