"""Errors for bad user input: the CLI prints the message and exits with code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user: a file, key or value. The message names all three."""
