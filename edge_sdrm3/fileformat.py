"""The errors and field checks shared by the readers of scenario, trace, platform and cost files."""
from __future__ import annotations

from .core.types import ConfigError


class FileFormatError(ConfigError):
    """A scenario, trace, platform or cost file that cannot be read; names the file, line and field."""


def _need(d: dict, key: str, typ, where: str):
    if key not in d:
        raise FileFormatError(f"{where}: missing field '{key}'")
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        if not _is_real(v):
            raise FileFormatError(f"{where}: field '{key}' must be float, got an integer out of range")
        v = float(v)
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        raise FileFormatError(f"{where}: field '{key}' must be {typ.__name__}, got {v!r}")
    return v


def _is_real(v) -> bool:
    """A JSON number that converts to a float (an integer past ~1.8e308 does not: OverflowError)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True
