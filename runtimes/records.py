"""Typed JSON records: dataclasses ⇄ JSON, atomic writes, sha256.

Every file shrinkwrap writes (manifest, parity, results, sweep, sensitivity) is a
frozen dataclass serialized by :func:`write_json` and read back, typed, by
:func:`read_record`. Numbers stay numbers; enums become their values; readers
never index a parsed dict by string key.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from runtimes.errors import ArtifactError

T = TypeVar("T")


def to_jsonable(obj: Any) -> Any:
    """Dataclasses → dicts, enums → their values; numbers stay numbers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def from_jsonable(cls: Any, data: Any) -> Any:
    """Inverse of :func:`to_jsonable`, driven by the dataclass type hints.

    Fields missing from ``data`` take their dataclass defaults, so a record
    written before a field with a default existed still reads.
    """
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        return from_jsonable(args[0], data)
    if origin in (list, tuple):
        item = typing.get_args(cls)[0]
        values = [from_jsonable(item, v) for v in data]
        return values if origin is list else tuple(values)
    if origin is dict:
        _, val = typing.get_args(cls)
        return {k: from_jsonable(val, v) for k, v in data.items()}
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} needs an object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        kwargs = {f.name: from_jsonable(hints[f.name], data[f.name])
                  for f in dataclasses.fields(cls) if f.name in data}
        return cls(**kwargs)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls(data)
    return data


def default_mode(directory: bool = False) -> int:
    """The mode a plain open()/mkdir() would give under the current umask (mkstemp uses 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(to_jsonable(obj), indent=2) + "\n").encode())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_record(path: Path, cls: type[T], what: str, schema_version: int | None = None,
                list_key: str | None = None) -> T:
    """Read a typed JSON record with one clear error for each way it can be wrong.

    ``schema_version`` and ``list_key`` are checked before the typed read, so that a
    file of another version or kind says so instead of failing on a field.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} does not hold a JSON object")
    if list_key is not None and not isinstance(data.get(list_key), list):
        raise ArtifactError(f"{path} has no '{list_key}' list")
    if schema_version is not None and data.get("schema_version") != schema_version:
        found = data.get("schema_version")
        if isinstance(found, int) and found > schema_version:
            raise ArtifactError(f"{path}: schema_version {found} is newer than this shrinkwrap reads "
                                f"({schema_version}); upgrade shrinkwrap to read it")
        raise ArtifactError(f"{path}: schema_version {found!r} is not {schema_version}")
    try:
        return from_jsonable(cls, data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ArtifactError(f"{path} does not match the {what} schema: {exc}") from exc
