"""The notebooks' facade: ``Study`` (a notebook's profile, seeds, store and data, whether to train)
and ``markdown``, re-exported by the package root as ``dc.Study`` and ``dc.markdown``."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deepcls.api import as_bool, as_seeds, check, checked

if TYPE_CHECKING:
    import pandas as pd

    from deepcls.store.runs import RunRecord


def _check_executor(name: str) -> None:
    """An unknown executor name fails when the study is made, not after its first grid is read."""
    from deepcls.errors import check_known
    from deepcls.execution.runner import EXECUTORS

    check_known("executor", name, EXECUTORS)


def markdown(text: str) -> Any:
    """``text`` as a notebook's Markdown output (plain text outside IPython)."""
    try:
        from IPython.display import Markdown
    except ImportError:
        return text
    return Markdown(text)


def _html(text: str) -> Any:
    """``text`` (HTML) as a notebook's output (the markup itself outside IPython)."""
    try:
        from IPython.display import HTML
    except ImportError:
        return text
    return HTML(text)


class Study:
    """One notebook's settings: which profile and seeds, where the store and data are, whether to
    train. ``results`` trains a grid's missing runs when asked, then reads it; reading always pools
    every seed the store holds, so a table shows what the ledger beside it reads."""

    @functools.partial(checked, types=False)  # a call that does not bind; the types are checked below
    def __init__(
        self,
        profile: str = "quick",
        seeds: Sequence[int] | int | str = (0,),
        *,
        results_dir: str | os.PathLike | None = None,
        data_dir: str | os.PathLike | None = None,
        train: bool | str = False,
        force: bool | str = False,
        executor: str | None = None,
        executor_options: Mapping[str, Any] | None = None,
    ) -> None:
        from deepcls.config import get_profile
        from deepcls.store.runs import RunStore

        # seeds, train and force are converted (and refused in one line) by as_seeds / as_bool
        for name, value, hint in (
            ("profile", profile, str),
            ("results_dir", results_dir, str | os.PathLike | None),
            ("data_dir", data_dir, str | os.PathLike | None),
            ("executor", executor, str | None),
            ("executor_options", executor_options, Mapping[str, Any] | None),
        ):
            check("dc.Study", name, value, hint)
        get_profile(profile)  # an unknown profile fails here, in the notebook's first cell
        self.profile, self.seeds = profile, as_seeds(seeds)
        self.train, self.force = as_bool("train", train), as_bool("force", force)
        if executor is not None:
            _check_executor(executor)
        self.store = RunStore(results_dir)
        self.data_dir = data_dir
        self.executor, self.executor_options = executor, dict(executor_options or {})

    @checked
    def banner(self) -> Any:
        """The profile and what it means, as Markdown."""
        from deepcls.report.formatting import banner

        return markdown(banner(self.profile))

    @checked
    def grid(
        self, tables: str | Sequence[str], seeds: Sequence[int] | None = None, rows: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """The grid of ``tables`` at the study's profile, for ``seeds`` (default: the study's)."""
        from deepcls.paper.grids import grid

        return grid(tables, self.profile, self.seeds if seeds is None else seeds, rows=rows)

    @checked
    def results(
        self,
        tables: str | Sequence[str],
        *,
        seeds: Sequence[int] | None = None,
        rows: Sequence[int] | None = None,
        train: bool | None = None,
    ) -> pd.DataFrame:
        """Train the missing runs of ``tables`` for ``seeds`` (default: the study's) if the study
        trains (or ``train`` says so), then the results table over every stored seed."""
        from deepcls.analysis.results import results_table

        grid = self.grid(tables, seeds, rows)
        if self.train if train is None else train:
            from deepcls.execution.runner import run_grid

            run_grid(
                grid["config"],
                store=self.store,
                data_dir=self.data_dir,
                force=self.force,
                executor=self.executor,
                executor_options=self.executor_options,
            )
        return results_table(grid, self.store)

    @functools.partial(checked, types=False)  # pd is a name for type checkers only: the types are checked below
    def record(self, results: pd.DataFrame, table: str, row: int) -> RunRecord | None:
        """The first stored seed's RunRecord of a results line (None while pending)."""
        import pandas as pd

        from deepcls.analysis.results import first_record

        for name, value, hint in (("results", results, pd.DataFrame), ("table", table, str), ("row", row, int)):
            check("dc.Study.record", name, value, hint)
        return first_record(results, table, row, self.store)

    @functools.partial(checked, types=False)  # pd is a name for type checkers only: the type is checked below
    def show(self, frame: pd.DataFrame) -> Any:
        """``frame`` as the report's pages show a table (deepcls.report.formatting.html_table): no
        index column, ``table`` and ``profile`` said once above it where every row shares them. A
        results table (:meth:`results`) shows the columns of dc.format_results with short status
        cells whose run ids open beneath them."""
        import pandas as pd

        from deepcls.report import formatting

        check("dc.Study.show", "frame", frame, pd.DataFrame)
        if all(c in frame for c in (*formatting.RESULTS_COLUMNS, "status", "run_ids")):
            return _html(formatting.to_html(frame))
        return _html(formatting.html_table(frame))

    @checked
    def ledger(self, tables: Sequence[str] | None = None) -> pd.DataFrame:
        """The ledger's lines about ``tables`` (default: all), formatted for reading. No table or an
        unknown one is a ConfigError line (an empty ledger would read as "nothing to judge")."""
        from deepcls.analysis import ledger
        from deepcls.errors import ConfigError, unknown
        from deepcls.paper.grids import ALL_TABLES
        from deepcls.report.formatting import format_ledger

        if tables is not None:
            if strangers := [t for t in tables if t not in ALL_TABLES]:
                raise ConfigError(unknown("table(s)", strangers, ALL_TABLES, quoted=True))
            if not tables:
                raise ConfigError(f"no table selected; known: {', '.join(ALL_TABLES)}")
        conclusions = ledger.CONCLUSIONS if tables is None else ledger.about(tables)
        return format_ledger(ledger.ledger(self.profile, self.store, conclusions))
