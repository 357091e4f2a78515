"""deepcls's version: one source, the package metadata (``version`` in pyproject.toml).

It moves whenever stored numbers can change (a new numeric default, a change to the loop, the data or
the models), so a run's ``deepcls_version`` says which code trained it; CHANGELOG.md says what moved.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepcls")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
