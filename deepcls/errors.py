"""User-facing errors: each one is printed as a single line by the CLI (exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeepclsError(Exception):
    """Base class for errors caused by bad input rather than by a bug."""


class ConfigError(DeepclsError, ValueError):
    """A run configuration or model option that cannot be used."""


class DataError(DeepclsError):
    """A dataset file that is missing, corrupt or of the wrong form."""


class StoreError(DeepclsError):
    """The run store cannot be read or written."""


class ClusterError(DeepclsError):
    """A Ray cluster that cannot be reached, or that refuses this client."""


def unknown(what: str, names: Iterable[object], known: Iterable[object], *, quoted: bool = False) -> str:
    """The one line for names that are not among ``known``: each with the closest known one where
    there is a close one ("unknown conclusion se_help (did you mean se_helps?)"), then the known ones;
    ``quoted``: the names as Python reprs. Every "unknown ..." message of the package says it this way."""
    known = [str(k) for k in dict.fromkeys(known)]
    named = []
    for name in names:
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        shown = repr(name) if quoted else str(name)
        named.append(f"{shown} (did you mean {close[0]}?)" if close else shown)
    return f"unknown {what} {', '.join(named)}; known: {', '.join(known)}"


def check_known(what: str, name: object, known: Iterable[object]) -> None:
    """ConfigError, in :func:`unknown`'s words, unless ``name`` is one of ``known``."""
    known = tuple(known)
    if name not in known:
        raise ConfigError(unknown(what, [name], known, quoted=True))
