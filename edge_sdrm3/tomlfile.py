"""Reading a TOML file (the service's config, the model catalog): one place for the parser's choice and
for turning every way a file can be unreadable into one error with a clear message."""
from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli package (a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]


class TomlFileError(ValueError):
    """A TOML file that cannot be read; the message starts with the file's path."""


def read_toml(path: str | Path) -> dict:
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise TomlFileError(f"{p}: cannot read ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise TomlFileError(f"{p}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:
        raise TomlFileError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise TomlFileError(f"{p}: not valid TOML (arrays or tables nested too deeply)") from None
