"""The Python API's one validation layer (deepcls.api): every public name of ``dc`` refuses arguments of
the wrong type or value with one line of the project's errors, never a raw TypeError or
AttributeError from deep inside; and a fuzz test throws hostile values at all of them. What the
API builds on (grids, executors) refuses what the command line refuses."""

from __future__ import annotations

import inspect
import os
import random
import re
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import pytest
from helpers import REPO_ROOT, run_cli
from helpers import one_line as one_error_line

import deepcls as dc
from deepcls.api import call_problem, conforms, describe
from deepcls.errors import ConfigError, DeepclsError, StoreError
from deepcls.paper import grids


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory two levels inside tmp_path (so ``../../x`` stays in it), with the store and
    the data folder there too: whatever a call writes lands under tmp_path."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("DEEPCLS_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("DEEPCLS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEEPCLS_PROGRESS", "0")
    return tmp_path


def one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


# ---------------------------------------------------------------------- the known failures, one by one
def _store(root: Path) -> dc.RunStore:
    return dc.RunStore(root / "results")


def _long_run_id(root: Path) -> Any:
    (root / "results" / "runs").mkdir(parents=True)  # the file system refuses the name only inside a folder that exists
    return dc.load_model("a" * 300)


KNOWN: dict[str, tuple[Callable[[Path], Any], type[DeepclsError], str]] = {
    "results_table(grid, str)": (
        lambda root: dc.results_table(dc.grid("resnet_se", "smoke"), "results"),
        ConfigError,
        r"^dc\.results_table: argument store must be RunStore, got str 'results'$",
    ),
    "ledger(conclusion ids)": (
        lambda root: dc.ledger("quick", _store(root), ["se_helps"]),
        ConfigError,
        r"^dc\.ledger: argument conclusions must be Sequence\[Conclusion\], got list \['se_helps'\]$",
    ),
    "fit(an option it does not take)": (
        lambda root: dc.fit(dc.RunConfig(), results_dir=root, bogus=1),
        ConfigError,
        r"^dc\.fit: got an unexpected keyword argument 'bogus'$",
    ),
    "fit(force='yes')": (
        lambda root: dc.fit(dc.RunConfig(), results_dir=root, force="yes"),
        ConfigError,
        r"^dc\.fit: argument force must be bool, got str 'yes'$",
    ),
    "Study(seeds=None)": (lambda root: dc.Study(seeds=None), ConfigError, "seeds must be"),
    "Study.results(rows=str)": (
        lambda root: dc.Study("smoke").results("resnet_se", rows="1"),
        ConfigError,
        r"^dc\.Study\.results: argument rows must be Sequence\[int\] \| None, got str '1'$",
    ),
    "grid([])": (lambda root: dc.grid([], "quick"), ConfigError, "no table selected; known: resnet_augmentation"),
    "grid(unknown table)": (lambda root: dc.grid(["nope"], "quick"), ConfigError, "unknown table 'nope'; known:"),
    "grid(unknown row)": (
        lambda root: dc.grid("resnet_se", "quick", rows=[99]),
        ConfigError,
        r"no row 99 in table\(s\) resnet_se; rows there: 0, 1",
    ),
    "grid(no row)": (lambda root: dc.grid("resnet_se", "quick", rows=[]), ConfigError, "no row selected"),
    "grid(no seed)": (lambda root: dc.grid("resnet_se", "quick", seeds=[]), ConfigError, "no seed selected"),
    "grid(table twice)": (
        lambda root: dc.grid(["resnet_se", "resnet_se"], "quick"),
        ConfigError,
        "selected twice: resnet_se",
    ),
    "run_grid([str])": (
        lambda root: dc.run_grid(["x"]),
        ConfigError,
        r"^dc\.run_grid: argument configs must be Iterable\[RunConfig\], got list \['x'\]$",
    ),
    "fit(str)": (lambda root: dc.fit("x"), ConfigError, r"^dc\.fit: argument config must be RunConfig, got str 'x'$"),
    "test_batches(batch_size=str)": (
        lambda root: dc.test_batches(dc.RunConfig(dataset="mnist"), batch_size="8"),
        ConfigError,
        r"^dc\.test_batches: argument batch_size must be int, got str '8'$",
    ),
    "test_batches(batch_size=0)": (
        lambda root: dc.test_batches(dc.RunConfig(dataset="mnist"), batch_size=0),
        ConfigError,
        "batch_size must be a whole number >= 1, got 0",
    ),
    "load_model(name too long)": (_long_run_id, StoreError, r"cannot read run 'a+' at .*results/runs/a{300}: "),
    "RunConfig(augment=5)": (lambda root: dc.RunConfig(augment=5), ConfigError, "augment must be .*, got int 5"),
    "RunConfig(dataset=list)": (lambda root: dc.RunConfig(dataset=[]), ConfigError, r"dataset must be a string, got"),
    "RunStore(int)": (
        lambda root: dc.RunStore(5),
        ConfigError,
        r"^dc\.RunStore: argument root must be str \| os\.PathLike \| None, got int 5$",
    ),
    "RunStore(name too long)": (lambda root: dc.RunStore("a" * 300), StoreError, "cannot be read"),
    "Study(unknown executor)": (lambda root: dc.Study(executor="x"), ConfigError, "unknown executor 'x'; known: local"),
    "Study.ledger(unknown table)": (lambda root: dc.Study().ledger(["x"]), ConfigError, "unknown table"),
    "paper_table(unknown)": (lambda root: dc.paper_table("x"), ConfigError, "unknown table 'x'; known:"),
    "records(missing line)": (
        lambda root: dc.records(dc.results_table(dc.grid("resnet_se", "smoke"), _store(root)), "x", 1, _store(root)),
        ConfigError,
        r"no line 'x' row 1 in the results table \(its tables: resnet_se\)",
    ),
    "too many arguments": (lambda root: dc.get_profile("quick", 1), ConfigError, r"^dc\.get_profile: too many"),
    "unknown keyword": (lambda root: dc.paper_table(tabel="x"), ConfigError, r"^dc\.paper_table: got an unexpected"),
    "RunStore(two roots)": (lambda root: dc.RunStore("a", "b"), ConfigError, "^dc.RunStore: too many positional"),
    "about([])": (lambda root: dc.about([]), ConfigError, "^no table given; known: resnet_augmentation"),
    "about(unknown table)": (lambda root: dc.about(["nope"]), ConfigError, "^unknown table\\(s\\) nope; known:"),
    "format_ledger(another frame)": (
        lambda root: dc.format_ledger(dc.grid("resnet_se", "smoke")),
        ConfigError,
        "^format_ledger needs a ledger \\(dc.ledger\\): the frame has no column id, metric, role",
    ),
    "plan_summary(another frame)": (
        lambda root: dc.plan_summary(dc.grid("resnet_se", "smoke"), "smoke"),
        ConfigError,
        "^plan_summary needs a plan",
    ),
}


@pytest.mark.parametrize("case", list(KNOWN))
def test_each_known_failure_is_one_project_error_line(case: str, sandbox: Path) -> None:
    call, error, message = KNOWN[case]
    with pytest.raises(error, match=message) as raised:
        call(sandbox)
    one_line(raised)


def test_public_functions_are_wrapped_once_and_classes_stay_classes() -> None:
    assert dc.ledger is dc.ledger and dc.grid.__wrapped__ is grids.grid
    assert inspect.isclass(dc.RunConfig) and inspect.isclass(dc.RunStore) and inspect.isclass(dc.Study)
    assert isinstance(dc.ALL_TABLES, tuple) and inspect.signature(dc.grid).parameters["tables"].name == "tables"


def test_good_calls_still_pass(sandbox: Path) -> None:
    assert len(dc.grid(("resnet_cifar10", "resnet_se"), "quick", range(2), rows=[0, 3, 4])) == 6
    assert dc.Study("smoke", 4, results_dir=sandbox / "elsewhere").seeds == (4,)  # a Path and one int are fine
    assert dc.RunConfig(lr=1, augment=["flip"]).lr == 1.0
    assert len(dc.paper_table("resnet_vflip")) == 0  # a table deepcls adds, with no reported rows


@pytest.mark.parametrize(
    ("value", "hint", "fits"),
    [
        (True, int, False),
        (3, float, True),
        (True, float, False),
        ("ab", Any, True),
        ("ab", "Unresolvable", True),
        ("ab", list[str], False),
        (["a", 1], list[str], False),
        (["a"], "list[str] | None", True),
        (None, int | None, True),
        ((1, "a"), tuple[int, str], True),
        ((1, 2), tuple[int, ...], True),
        ((1, "a"), tuple[int, ...], False),
        ({"a": 1}, dict[str, int], True),
        ({"a": "b"}, dict[str, int], False),
        (iter(["a", 1]), Iterable[str], True),  # an iterator is never consumed
        (Path("x"), os.PathLike, True),
        ("cpu", Literal["cpu", "cuda"], True),
        (1, Literal[True], False),
        (len, Callable[..., int], True),
    ],
)
def test_conforms(value: object, hint: Any, fits: bool) -> None:
    assert conforms(value, hint) is fits


def test_describe_reads_as_written() -> None:
    assert describe(str | os.PathLike | None) == "str | os.PathLike | None"
    assert describe(tuple[str, ...]) == "tuple[str, ...]"


# ---------------------------------------------------------------------- the fuzz
POOL: list[Any] = [
    None,
    0,
    -1,
    3.5,
    float("nan"),
    float("inf"),
    True,
    "",
    "x",
    "a" * 300,
    "../../etc/passwd",
    b"x",
    [],
    ["x"],
    [1, 2],
    {},
    {"a": 1},
    object(),
    Path("/nonexistent/x"),
]
TRIALS = 30  # per public name
NOT_CALLED = {"findings", "plots", "__version__"}  # modules and the version string
REFUSED_ONLY = {"fit", "run_grid", "build_report", "reproduce"}  # train or render: called only as the wrapper refuses
ARITY_UNCHECKED: set[str] = set()  # names whose calls with an argument too many are not refused


def draw(rng: random.Random, function: Callable[..., Any], fill_all: bool = False) -> tuple[list, dict]:
    """Hostile arguments for ``function``'s signature: every required parameter, each optional one
    half the time (all with ``fill_all``), positionally until one is left out, then by keyword. Half
    the values are drawn among those of the parameter's type, so that the checks of values behind
    the type check are reached too."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    hints, by_keyword = hints_of(function), False
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty and not fill_all and rng.random() < 0.5:
            by_keyword = True  # a parameter left out: the ones after it go by keyword
            continue
        typed = [v for v in POOL if conforms(v, hints.get(parameter.name, Any))]
        value = rng.choice(typed if typed and rng.random() < 0.5 else POOL)
        if parameter.kind is parameter.KEYWORD_ONLY or by_keyword:
            kwargs[parameter.name] = value
        else:
            args.append(value)
    return args, kwargs


def hints_of(function: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' type hints (a constructor's for a class); none where they do not resolve."""
    target = function.__init__ if inspect.isclass(function) else inspect.unwrap(function)  # type: ignore[misc]
    try:
        return typing.get_type_hints(target)
    except Exception:
        return {}


def public_callables() -> list[str]:
    names = []
    for name in dc.__all__:
        if name in NOT_CALLED:
            continue
        value = getattr(dc, name)
        if callable(value) and not inspect.ismodule(value):
            names.append(name)
    return names


def outside(tmp_path: Path) -> dict[str, list[str]]:
    """What a stray write outside tmp_path would change: the repository's top level and its store,
    the folder the sandbox's ``../..`` would leave, and the hostile absolute path."""
    places = [REPO_ROOT, REPO_ROOT / "results", REPO_ROOT / "results" / "runs", tmp_path.parent, Path("/nonexistent")]
    return {str(p): sorted(os.listdir(p)) if p.is_dir() else [] for p in places}


def call(name: str, function: Callable[..., Any], args: list, kwargs: dict) -> None:
    try:
        function(*args, **kwargs)
    except DeepclsError as err:
        assert str(err) and "\n" not in str(err), f"{name}(*{args!r:.80}, **{kwargs!r:.80}): {err}"
    except Exception as err:  # anything else is the failure this test looks for
        raise AssertionError(
            f"{name}(*{args!r:.120}, **{kwargs!r:.120}) raised {type(err).__name__}: {err}"[:600]
        ) from err


def test_fuzz_every_public_name_gives_only_project_errors(sandbox: Path) -> None:
    before = outside(sandbox)
    rng = random.Random(0)
    names = public_callables()
    assert {"grid", "ledger", "Study", "RunConfig", "RunStore", "fit"} <= set(names)
    for name in names:
        function = getattr(dc, name)
        for _ in range(TRIALS):
            args, kwargs = draw(rng, function)
            if name in REFUSED_ONLY:
                while call_problem(inspect.unwrap(function), tuple(args), kwargs) is None:
                    args, kwargs = draw(rng, function)  # a call that could train: draw again
            if name not in ARITY_UNCHECKED and rng.random() < 0.05:
                args.append("one too many")
            call(name, function, args, kwargs)
    study = dc.Study("smoke", results_dir=sandbox / "results", train=False)
    for method in ("grid", "results", "record", "ledger", "banner", "show"):
        function = getattr(study, method)
        for _ in range(TRIALS // 3):
            args, kwargs = draw(rng, function, fill_all=True)
            if rng.random() < 0.05:
                args.append("one too many")
            call(f"Study.{method}", function, args, kwargs)
    assert outside(sandbox) == before


def test_an_unknown_name_suggests_the_closest_known_one(capsys: pytest.CaptureFixture[str]) -> None:
    from deepcls.cli import main

    with pytest.raises(ConfigError, match=r"^unknown table 'resnet_cifar1' \(did you mean resnet_cifar10\?\); known:"):
        dc.grid("resnet_cifar1", "quick")
    assert main(["ledger", "--conclusions", "se_help,zzz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepcls: error: unknown conclusion(s) se_help (did you mean se_helps?), zzz; known: ")
    for argv, said in [
        (["results", "--profile", "papr"], "argument --profile: unknown choice 'papr' (did you mean paper?); known:"),
        (["trian"], "argument command: unknown choice 'trian' (did you mean train?); known: train, evaluate"),
        (["train", "--model", "resnt18"], "unknown model 'resnt18' (did you mean resnet18?); known: resnet18"),
        (["train", "--augment", "flp"], "unknown augmentation 'flp' (did you mean flip?); known: flip"),
        (["report", "--notebooks", "05_squeez"], "unknown notebook(s) 05_squeez (did you mean 05_squeeze_excitation?)"),
    ]:
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and one_error_line(err).startswith(f"deepcls: error: {said}")
    with pytest.raises(ConfigError, match=r"^unknown model 'vgg_16' \(did you mean vgg16\?\); known: resnet18"):
        dc.RunConfig(dataset="mnist", model="vgg_16")


def test_every_unknown_name_is_said_one_way() -> None:
    """ "unknown <what> <name> (did you mean ...?); known: ..." comes from deepcls.errors.unknown alone."""
    by_hand = [
        f"{path.relative_to(REPO_ROOT)}:{n}"
        for path in sorted((REPO_ROOT / "deepcls").rglob("*.py"))
        if path.name != "errors.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"""f["']unknown .*; known""", line)
    ]
    assert not by_hand


def test_the_python_api_refuses_what_the_cli_refuses() -> None:
    """A seed given twice would count one run as two; a budget must be a positive finite time."""
    from deepcls.execution.runner import ConcurrentExecutor

    with pytest.raises(ConfigError, match="seeds repeat a value"):
        grids.grid("resnet_se", "quick", (0, 0))
    for budget in (float("nan"), float("inf"), -10.0, 0.0):
        with pytest.raises(ConfigError, match="a budget must be a positive number of seconds"):
            ConcurrentExecutor(budget_s=budget)
