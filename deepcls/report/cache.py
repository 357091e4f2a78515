"""The report's execution cache: a notebook is executed again only when what its output depends on changed.

In the spirit of jupyter-cache (MyST-NB), each notebook gets a key that hashes its *parts*:

- ``source``: its cells' types and sources (outputs, ids and metadata left out);
- ``profile``: the one parameter that changes what it shows (paths do not: the runs they hold are hashed);
- ``version``: deepcls's version, which moves whenever stored numbers or their reading can change;
- ``runs``: every stored file (trained weights aside) of every run its tables' rows read at the profile, at
  every seed a results table looks up, and the resume checkpoint of each one not stored yet (a table shows
  its progress). A notebook that names no table, or all of them (``ALL_TABLES``), reads the whole store:
  every run of every profile (the plan's costs read them all) and the profile's timings;
- ``ledger``: the ledger lines a table notebook shows. Each line is adjusted over the whole family of the
  report's claims, so it can move when a run of another table does; hashing the lines themselves re-executes
  the notebook exactly when they move (an early cut-off, as build systems do for derived inputs).

The tables a notebook reads are the table names its code spells (``study.results("resnet_se")``), found by
parsing it, so a new notebook needs no declaration. A notebook that trains (it calls ``results`` without
``train=False``) is executed whenever its tables' seed-0 runs are missing and the build trains.

``cache.json`` beside the executed notebooks records each key with its parts (so a build says what
changed) and the SHA-256 of the executed copy it describes: an entry counts only while that copy is the
file on disk. Committed with the outputs, it lets a clean clone reuse them. An executed copy without an
entry (outputs made before the cache, or copied in by hand) is executed again: nothing records what it read.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nbformat
import pandas as pd

from deepcls.analysis import ledger
from deepcls.analysis.results import SEEDS_LOOKED_UP
from deepcls.atomic import write_with
from deepcls.paper.grids import ALL_TABLES, grid
from deepcls.store.runs import RunStore
from deepcls.version import __version__

MANIFEST = "cache.json"  # beside the executed notebooks: {notebook: {key, parts, executed}}
UNHASHED = frozenset({"weights.safetensors"})  # no page reads the trained weights; they are the largest file


@dataclass(frozen=True)
class Reads:
    """What a notebook reads and whether it trains: ``tables`` (None: the whole store)."""

    tables: tuple[str, ...] | None
    trains: bool


@dataclass(frozen=True)
class Decision:
    """Whether a build executes a notebook, and why (or why not): shown beside its name."""

    name: str
    execute: bool
    reason: str


def notebook_reads(notebook: nbformat.NotebookNode) -> Reads:
    """The tables a notebook's code names and whether it trains, from its syntax tree (IPython's magics
    turned into the calls they stand for first). Code that names ``ALL_TABLES`` or no table reads the whole
    store; code that does not parse reads it too, and may train."""
    from IPython.core.inputtransformer2 import TransformerManager

    tables: set[str] = set()
    everything, trains = False, False
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(TransformerManager().transform_cell(cell.source))
        except SyntaxError:
            everything = trains = True
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ALL_TABLES:
                tables.add(node.value)
            elif (isinstance(node, ast.Name) and node.id == "ALL_TABLES") or (
                isinstance(node, ast.Attribute) and node.attr == "ALL_TABLES"
            ):
                everything = True
            elif isinstance(node, ast.Call) and _trains(node):
                trains = True
    return Reads(None if everything or not tables else tuple(sorted(tables)), trains)


def _trains(call: ast.Call) -> bool:
    """``x.results(...)`` without ``train=False`` (Study.results trains when its study does), or a
    ``run_grid`` / ``fit`` call."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name in ("run_grid", "fit"):
        return True
    if name != "results":
        return False
    return not any(
        k.arg == "train" and isinstance(k.value, ast.Constant) and k.value.value is False for k in call.keywords
    )


def source_digest(cells: Iterable[nbformat.NotebookNode]) -> str:
    """SHA-256 of the cells' types and sources: what executing them depends on, not how they were saved."""
    return _sha256(json.dumps([[c.cell_type, c.source] for c in cells]).encode())


class Fingerprints:
    """The key parts of notebooks at one profile, from the store as it is now. Each run and the ledger
    are read at most once; make a new one after the store may have changed (a notebook trained)."""

    def __init__(self, profile: str, store: RunStore) -> None:
        self.profile, self.store = profile, store
        self._runs: dict[str, str] = {}

    def parts(self, notebook: nbformat.NotebookNode) -> dict[str, str]:
        """The key parts of ``notebook`` (see the module), as ``{part: digest}``."""
        reads = notebook_reads(notebook)
        parts = {
            "source": source_digest(notebook.cells),
            "profile": self.profile,
            "version": __version__,
            "runs": self.runs_read(reads.tables),
        }
        if reads.tables is not None:
            parts["ledger"] = self.ledger_lines(reads.tables)
        return parts

    def must_train(self, notebook: nbformat.NotebookNode) -> bool:
        """True when the notebook trains and a seed-0 run of its tables is not stored (or failed)."""
        return not self.to_train(notebook).empty

    def to_train(self, notebook: nbformat.NotebookNode) -> pd.DataFrame:
        """The grid lines (table, row, config) of the seed-0 runs the notebook would train: those of its
        tables not stored (or failed); none for a notebook that does not train."""
        reads = notebook_reads(notebook)
        lines = grid(reads.tables or ALL_TABLES, self.profile)
        if not reads.trains:
            return lines.iloc[:0]
        return lines[[not self.store.has(c) for c in lines["config"]]]

    def runs_read(self, tables: tuple[str, ...] | None) -> str:
        """SHA-256 of the runs ``tables`` read at the profile (``None``: the whole store)."""
        if tables is None:
            ids = [p.name for p in self.store.runs.iterdir() if not p.name.startswith(".")] if self._stored else []
            timings = self.store.root / "timings" / self.profile
            files = sorted(p for p in timings.rglob("*") if p.is_file()) if timings.is_dir() else []
            extra = [f"{p.relative_to(timings)}:{_sha256(p.read_bytes())}" for p in files]
        else:
            ids, extra = [c.run_id for c in grid(list(tables), self.profile, SEEDS_LOOKED_UP)["config"]], []
        return _sha256("\n".join([*(f"{i}:{self._run(i)}" for i in sorted(set(ids))), *extra]).encode())

    def ledger_lines(self, tables: tuple[str, ...]) -> str:
        """SHA-256 of the ledger lines about ``tables``, as read from the whole family (6 significant
        digits: the pages show fewer, and the last bits of a p-value may differ between machines)."""
        ids = {c.id for c in ledger.about(tables)}
        lines = self._ledger[self._ledger["id"].isin(ids)]
        return _sha256(lines.to_csv(index=False, float_format="%.6g").encode())

    @cached_property
    def _ledger(self) -> pd.DataFrame:
        return ledger.ledger(self.profile, self.store)

    @cached_property
    def _stored(self) -> bool:
        return self.store.runs.is_dir()

    @cached_property
    def _checkpoints(self) -> dict[str, str]:
        """Resume checkpoints by run id: their size and time, which move with every epoch they hold."""
        folder = self.store.checkpoints
        if not folder.is_dir():
            return {}
        found = {}
        for path in folder.glob("*.pt"):
            if path.name.count(".") == 1:  # <run-id>.pt; <run-id>.final.pt is a complete run's kept state
                stat = path.stat()
                found[path.stem] = f"checkpoint {stat.st_size} {stat.st_mtime_ns}"
        return found

    def _run(self, run_id: str) -> str:
        """A run's files as one digest; a run not stored is its resume checkpoint, or absent."""
        if run_id not in self._runs:
            folder = self.store.runs / run_id
            if folder.is_dir():
                files = sorted(p for p in folder.iterdir() if p.is_file() and p.name not in UNHASHED)
                digest = _sha256(
                    "\n".join(
                        f"{p.name}:{_sha256(p.read_bytes())}" for p in files if not p.name.startswith(".")
                    ).encode()
                )
            else:
                digest = self._checkpoints.get(run_id, "absent")
            self._runs[run_id] = digest
        return self._runs[run_id]


class ExecutionCache:
    """The manifest of one profile's executed notebooks (``<out_dir>/cache.json``) and the decisions it gives."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries: dict[str, dict] = {k: v for k, v in entries.items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError):  # none yet, or unreadable: every notebook is new
            self.entries = {}

    def decide(self, name: str, notebook: nbformat.NotebookNode, fingerprints: Fingerprints, train: bool) -> Decision:
        """Execute ``name`` unless its executed copy is the one recorded under the key its inputs give now."""
        if train and fingerprints.must_train(notebook):
            return Decision(name, True, "runs to train")
        executed = self.out_dir / f"{name}.ipynb"
        if not executed.is_file():
            return Decision(name, True, "not executed yet")
        try:
            parts = fingerprints.parts(notebook)
        except Exception as err:  # a store the key cannot read: the notebook says what is wrong with it
            return Decision(name, True, f"its inputs could not be hashed ({type(err).__name__})")
        entry = self.entries.get(name)
        if entry is None:
            return Decision(name, True, "no record of what it read")
        if entry.get("executed") != _sha256(executed.read_bytes()):
            return Decision(name, True, "its executed copy changed")
        recorded = entry.get("parts") or {}
        changed = [p for p in sorted(set(parts) | set(recorded)) if parts.get(p) != recorded.get(p)]
        if changed or entry.get("key") != key(parts):
            return Decision(name, True, f"{', '.join(changed) or 'key'} changed")
        return Decision(name, False, "unchanged")

    def record(self, name: str, parts: Mapping[str, str]) -> None:
        """Remember that the executed copy of ``name`` now on disk answers ``parts``."""
        executed = self.out_dir / f"{name}.ipynb"
        self.entries[name] = {"key": key(parts), "parts": dict(parts), "executed": _sha256(executed.read_bytes())}

    def forget(self, name: str) -> None:
        """A notebook that failed is executed again by the next build."""
        self.entries.pop(name, None)

    def save(self, known: Iterable[str]) -> bool:
        """Write the manifest (entries of ``known`` notebooks only) if it changed; True if written."""
        known = set(known)
        entries = {n: e for n, e in sorted(self.entries.items()) if n in known}
        return write_if_changed(self.path, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode())


def key(parts: Mapping[str, str]) -> str:
    """The cache key: SHA-256 of the parts."""
    return _sha256(json.dumps(dict(parts), sort_keys=True).encode())


def write_if_changed(path: Path, data: bytes, volatile: re.Pattern[bytes] | None = None) -> bool:
    """Write ``data`` to ``path`` atomically unless the file holds it already (apart from what ``volatile``
    matches, such as a page's generation time); True if written. An unchanged file keeps its bytes and
    its modification time, so a build that changed nothing leaves nothing for git or make to see."""
    try:
        old = path.read_bytes()
    except OSError:
        old = None
    if old is not None and _stable(old, volatile) == _stable(data, volatile):
        return False
    write_with(path, lambda tmp: tmp.write_bytes(data))
    return True


def sync_folder(staged: Path, target: Path, volatile: re.Pattern[bytes] | None = None) -> list[str]:
    """Copy each file of ``staged`` into ``target`` with :func:`write_if_changed`; the names written."""
    return [
        p.name
        for p in sorted(staged.iterdir())
        if p.is_file() and write_if_changed(target / p.name, p.read_bytes(), volatile)
    ]


def stored_runs(store: RunStore) -> dict[str, tuple[int, int]]:
    """Each stored run's ``metrics.json`` size and modification time: what training a run changes."""
    if not store.runs.is_dir():
        return {}
    found = {}
    for folder in store.runs.iterdir():
        try:
            stat = (folder / "metrics.json").stat()
        except OSError:  # a temporary, or a run being swapped in
            continue
        if not folder.name.startswith("."):
            found[folder.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def trained_since(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> int:
    """How many runs are new or rewritten between two :func:`stored_runs`."""
    return sum(before.get(run_id) != state for run_id, state in after.items())


def _stable(data: bytes, volatile: re.Pattern[bytes] | None) -> bytes:
    return data if volatile is None else volatile.sub(b"", data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
