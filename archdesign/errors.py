"""Errors for bad user input: the CLI prints the message and exits with code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class InputError(ValueError):
    """Bad input from a user: a file, key or value. The message names all three."""


def read_data_file(path: Path, what: str, error: type[InputError] = InputError) -> Any:
    """Parse a YAML or JSON file (by suffix) with safe loaders; errors name the file.

    Every user-supplied data file (specs, spaces, profiles, tables, run configs) is read
    through here: nothing is ever unpickled or constructed from tags.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from None
    is_json = path.suffix == ".json"
    try:
        return json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: not valid {'JSON' if is_json else 'YAML'}: {exc}") from None
