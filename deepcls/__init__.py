"""deepcls: ResNet and VGG on MNIST and CIFAR-10, the reference report's tables rerun beside its
numbers, and a ledger of which of its conclusions hold.

The notebook surface, imported on first use (``import deepcls`` itself loads nothing heavy)::

    import deepcls as dc

    study = dc.Study("quick", train=True)
    results = study.results(["resnet_cifar10"])  # trains what the store lacks, then reads every seed
    dc.format_results(results)
    study.ledger(["resnet_cifar10"])

The stages, in the order data flows: ``paper`` (the report as data) -> ``data``, ``models`` ->
``engine`` (``fit``) <- ``execution`` (``run_grid``) -> ``store`` -> ``analysis`` -> ``report``.
"""

from __future__ import annotations

import importlib
from typing import Any

from deepcls.version import __version__ as __version__

_SURFACE = {
    # what a run is
    "RunConfig": "deepcls.config",
    "PROFILE_NAMES": "deepcls.config",
    "get_profile": "deepcls.config",
    # the report as data
    "ALL_TABLES": "deepcls.paper.grids",
    "grid": "deepcls.paper.grids",
    "paper_table": "deepcls.paper.grids",
    "CONCLUSIONS": "deepcls.paper.conclusions",
    # data and models
    "load_dataset": "deepcls.data",
    "build_model": "deepcls.models",
    "list_models": "deepcls.models",
    "register_family": "deepcls.models",
    "register_model": "deepcls.models",
    "model_summary": "deepcls.models",
    # training
    "fit": "deepcls.engine.fit",
    "run_grid": "deepcls.execution.runner",
    # trained networks
    "load_model": "deepcls.engine.evaluate",
    "predict": "deepcls.engine.predict",
    "reproduce": "deepcls.engine.reproduce",
    "test_batches": "deepcls.engine.evaluate",
    "evaluate_run": "deepcls.engine.evaluate",
    # the store
    "RunStore": "deepcls.store.runs",
    # reading
    "results_table": "deepcls.analysis.results",
    "records": "deepcls.analysis.results",
    "first_record": "deepcls.analysis.results",
    "ledger": "deepcls.analysis.ledger",
    "about": "deepcls.analysis.ledger",
    "ledger_summary": "deepcls.report.verdicts:summary",
    "verdict_table": "deepcls.report.verdicts:summary_table",
    "plan": "deepcls.analysis.plan",
    # showing
    "format_results": "deepcls.report.formatting",
    "format_ledger": "deepcls.report.formatting",
    "format_plan": "deepcls.report.formatting",
    "plan_summary": "deepcls.report.formatting",
    "build_report": "deepcls.report.build",
    # the notebooks' facade
    "Study": "deepcls.study",
    "markdown": "deepcls.study",
}
_MODULES = {"findings": "deepcls.analysis.findings", "plots": "deepcls.report.plots"}
__all__ = sorted([*_SURFACE, *_MODULES, "__version__"])
_LOADED: dict[str, Any] = {}  # each public name resolved once: dc.ledger is dc.ledger


def __getattr__(name: str) -> Any:
    """The public names, imported on first use. Functions come wrapped by deepcls.api.checked (a call
    whose arguments do not fit the function's signature or type hints is one ConfigError line naming
    ``dc.NAME``); classes stay classes (their constructors check their own arguments) and constants
    stay as they are."""
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name not in _SURFACE:
        raise AttributeError(f"module 'deepcls' has no attribute {name!r}")
    if name not in _LOADED:
        import inspect

        from deepcls.api import checked

        module, _, attribute = _SURFACE[name].partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        _LOADED[name] = checked(value, f"dc.{name}") if inspect.isfunction(value) else value
    return _LOADED[name]


def __dir__() -> list[str]:
    return __all__
