"""The notebooks' facade: ``Study`` (a notebook's profile, seeds, store and data, whether to train)
and ``markdown``, re-exported by the package root as ``dc.Study`` and ``dc.markdown``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from deepcls.store.runs import RunRecord


def markdown(text: str) -> Any:
    """``text`` as a notebook's Markdown output (plain text outside IPython)."""
    try:
        from IPython.display import Markdown
    except ImportError:
        return text
    return Markdown(text)


class Study:
    """One notebook's settings: which profile and seeds, where the store and data are, whether to
    train. ``results`` trains a grid's missing runs when asked, then reads it; reading always pools
    every seed the store holds, so a table shows what the ledger beside it reads."""

    def __init__(
        self,
        profile: str = "quick",
        seeds: Sequence[int] = (0,),
        *,
        results_dir: str | None = None,
        data_dir: str | None = None,
        train: bool = False,
        force: bool = False,
        executor: str | None = None,
        executor_options: Mapping[str, Any] | None = None,
    ) -> None:
        from deepcls.config import get_profile
        from deepcls.store.runs import RunStore

        get_profile(profile)  # an unknown profile fails here, in the notebook's first cell
        self.profile, self.seeds = profile, tuple(seeds)
        self.store = RunStore(results_dir)
        self.data_dir, self.train, self.force = data_dir, train, force
        self.executor, self.executor_options = executor, dict(executor_options or {})

    def banner(self) -> Any:
        """The profile and what it means, as Markdown."""
        from deepcls.report.formatting import banner

        return markdown(banner(self.profile))

    def grid(
        self, tables: str | Sequence[str], seeds: Sequence[int] | None = None, rows: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """The grid of ``tables`` at the study's profile, for ``seeds`` (default: the study's)."""
        from deepcls.paper.grids import grid

        return grid(tables, self.profile, self.seeds if seeds is None else seeds, rows=rows)

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

    def record(self, results: pd.DataFrame, table: str, row: int) -> RunRecord | None:
        """The first stored seed's RunRecord of a results line (None while pending)."""
        from deepcls.analysis.results import first_record

        return first_record(results, table, row, self.store)

    def ledger(self, tables: Sequence[str] | None = None) -> pd.DataFrame:
        """The ledger's lines about ``tables`` (default: all), formatted for reading."""
        from deepcls.analysis import ledger
        from deepcls.report.formatting import format_ledger

        conclusions = ledger.CONCLUSIONS if tables is None else ledger.about(tables)
        return format_ledger(ledger.ledger(self.profile, self.store, conclusions))
