"""Errors for bad user input, and the one validated reader of user files.

The CLI prints an :class:`InputError`'s message and exits with code 2. Every file a user
hands archdesign (specs, spaces, profiles, tables, run configs) is read through
:func:`read_text_file` / :func:`read_data_file`, which turn anything a hostile or broken
file can do (a directory, FIFO or device, gigabytes, bytes that are not UTF-8, nesting
that exhausts the stack, YAML aliases that expand to billions of nodes) into an
:class:`InputError` naming the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

#: Largest data file (spec, space, profile, run config, OFA table) read.
MAX_DATA_BYTES = 32 << 20
#: Largest measured table (TinyNAS, measurements CSV) read.
MAX_TABLE_BYTES = 512 << 20
#: Deepest nesting of mappings and lists; archdesign's own files stay under 10.
MAX_DEPTH = 64
#: Most nodes a YAML document may expand to once its aliases are followed.
MAX_NODES = 2_000_000


class InputError(ValueError):
    """Bad input from a user: a file, key or value. The message names all three."""


def read_text_file(path: Path, what: str, error: type[InputError] = InputError,
                   max_bytes: int = MAX_DATA_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``, or ``error`` naming it."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise error(f"{path}: cannot read {what} ({kind})")
    if info.st_size > max_bytes:
        raise error(f"{path}: {what} is {info.st_size} bytes, more than the {max_bytes} "
                    f"allowed")
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the stat must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: {what} is more than the {max_bytes} bytes allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start}: "
                    f"{data[exc.start:exc.start + 1]!r})") from None


def read_data_file(path: Path, what: str, error: type[InputError] = InputError) -> Any:
    """Parse a YAML or JSON file (by suffix) with safe loaders; errors name the file.

    Nothing is ever unpickled or constructed from tags; a YAML document is checked for
    depth and expanded size before any Python object is built from it.
    """
    path = Path(path)
    text = read_text_file(path, what, error)
    is_json = path.suffix == ".json"
    try:
        if is_json:
            data = json.loads(text, object_pairs_hook=lambda pairs: _unique_object(
                pairs, path, error))
            _check_plain(data, path, what, error)
            return data
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_node(node, path, what, error)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise error(f"{path}: {what} is nested too deeply (at most {MAX_DEPTH} levels)") \
            from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: not valid {'JSON' if is_json else 'YAML'}: {exc}") from None


def _too_deep(path: Path, what: str, error: type[InputError]) -> InputError:
    return error(f"{path}: {what} is nested too deeply (at most {MAX_DEPTH} levels)")


def _check_node(root: yaml.Node, path: Path, what: str, error: type[InputError]) -> None:
    """Depth and alias-expanded size of a composed YAML document, without expanding it."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _too_deep(path, what, error)
        known = sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            _check_unique_keys([k.value for k, _ in node.value
                                if isinstance(k, yaml.ScalarNode) and k.value != "<<"],
                               path, error)
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > MAX_NODES:
            raise error(f"{path}: {what} expands to more than {MAX_NODES} values (YAML "
                        f"aliases repeated over and over?)")
        sizes[id(node)] = total
        return total

    size(root, 0)


def _check_unique_keys(keys: list[Any], path: Path, error: type[InputError]) -> None:
    """A mapping that gives a key twice is refused: a loader would keep one silently."""
    seen = set()
    for key in keys:
        if key in seen:
            raise error(f"{path}: the key {key!r} is given twice in one mapping (keep one)")
        seen.add(key)


def _unique_object(pairs: list[tuple[str, Any]], path: Path,
                   error: type[InputError]) -> dict[str, Any]:
    _check_unique_keys([k for k, _ in pairs], path, error)
    return dict(pairs)


def _check_plain(data: Any, path: Path, what: str, error: type[InputError]) -> None:
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(path, what, error)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
