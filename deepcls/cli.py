"""The ``deepcls`` command line: train, results, ledger, report, markdown, runs, bench, info.

Bad input ends with one line on stderr (``deepcls: error: ...``) and exit code 2; a full disk
or another system error in one line and exit code 1; Ctrl-C in one line and exit code 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import math
import os
import re
import shutil
import sys
import textwrap
import typing
from collections.abc import Sequence
from contextlib import nullcontext

from deepcls import api
from deepcls.config import MODEL_OPTIONS, PROFILE_NAMES, RunConfig
from deepcls.errors import DeepclsError, unknown
from deepcls.progress import activity

if typing.TYPE_CHECKING:
    import pandas as pd

    from deepcls.paper.conclusions import Conclusion
    from deepcls.store.runs import RunStore

DESCRIPTION = "ResNet and VGG on MNIST and CIFAR-10: the reference report rerun, its conclusions weighed."
EXIT_USAGE = 2
EXIT_FAILED = 1
KEEP_WEIGHTS = "keep complete runs' weights in their run folders (default: the ignored results/.cache)"
EXIT_INTERRUPTED = 130
TENSORBOARD = "also write each epoch as TensorBoard logs to DIR/<run-id>/ (pip install 'deepcls[tensorboard]')"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error instead of usage + error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"deepcls: error: {message}\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        """argparse's check of a value against ``choices``, naming the closest (as Python 3.14's
        ``suggest_on_error`` does): "unknown choice 'papr' (did you mean paper?)"."""
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, unknown("choice", [value], action.choices, quoted=True))


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number >= 1 (``--jobs 0`` would divide the cores by zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _share(text: str) -> float:
    """An argparse type: a finite number >= 0 (``--gpus-per-run nan`` would reach Ray)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _a_path(text: str) -> str:
    """An argparse type: a non-empty path (``--csv ''`` would silently write nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a path (or - to print)")
    return text


DATA_DIR_HELP = "folder with <dataset>.npz, downloaded there if missing (default: $DEEPCLS_DATA_DIR or ./data)"
RESULTS_DIR_HELP = "run store and reports (default: $DEEPCLS_RESULTS_DIR or ./results)"
PROFILE_HELP = (
    "smoke (seconds a run: checks the machinery), quick (10%% of the epochs on 3,000 images), "
    "paper (the report's recipes), best (deepcls's recipe)"
)


def _folders(parser: argparse.ArgumentParser, data: bool = True) -> None:
    """``--data-dir`` (unless ``data`` is False) and ``--results-dir``, said alike by every command."""
    if data:
        parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    parser.add_argument("--results-dir", default=None, help=RESULTS_DIR_HELP)


def _config_help(name: str, default: object) -> str:
    """What RunConfig's field ``name`` says of itself, for a command that sets it outside a run."""
    field = next(f for f in dataclasses.fields(RunConfig) if f.name == name)
    said = re.sub(r"(; default: .*|\s*\(default: [^)]*\))$", "", field.metadata["help"])  # a run's default, not ours
    return f"{said} (default: {default})".replace("%", "%%")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One option per RunConfig field, typed from its annotation and documented from its metadata (what
    it is, its unit, its valid values); unset means the default. The values are checked by RunConfig,
    the one place the Python API checks them too."""
    hints = typing.get_type_hints(RunConfig)
    group = parser.add_argument_group("the run (RunConfig)")
    for f in dataclasses.fields(RunConfig):
        if f.name in skip:
            continue
        kind = next((t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None)), str)
        choices = f.metadata["choices"]() if f.metadata.get("choices") else ()
        said = [f.metadata["help"]]
        if choices and f.name not in MODEL_OPTIONS:
            said.append("from: " + ", ".join(map(str, choices)))
        if f.default not in (None, (), dataclasses.MISSING) and "default:" not in said[0]:
            said.append(f"default: {str(f.default).lower() if kind is bool else f.default}")
        text = "; ".join(said).replace("%", "%%")
        if kind is bool:
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(
                _flag(f.name),
                type=kind if kind in (int, float) else str,
                default=None,
                metavar="OPS" if f.name == "augment" else f.name.upper(),
                help=text,
            )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    values = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if getattr(args, f.name, None) is not None
    }
    return RunConfig(**values)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="deepcls", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one run (or reuse it from the store)")
    add_config_arguments(train)
    _folders(train)
    train.add_argument("--force", action="store_true", help="retrain even if the run is stored")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--keep-weights", action="store_true", help=KEEP_WEIGHTS)
    train.add_argument("--tensorboard", type=_a_path, default=None, metavar="DIR", help=TENSORBOARD)

    evaluate = sub.add_parser(
        "evaluate", help="re-measure a stored run's network on its test split: stored vs re-measured accuracy"
    )
    evaluate.add_argument("run", metavar="RUN", help="a run id (deepcls results shows them)")
    evaluate.add_argument("--device", default="auto", help="where to evaluate (default: auto)")
    _folders(evaluate)

    reproduce = sub.add_parser(
        "reproduce",
        help="retrain stored runs from their config.json and compare the histories epoch by epoch",
    )
    reproduce.add_argument("runs", nargs="*", metavar="RUN", help="run ids (or --profile for its complete runs)")
    reproduce.add_argument("--profile", default=None, choices=PROFILE_NAMES, help="without RUN: this profile's runs")
    reproduce.add_argument("--sample", type=_at_least_one, default=None, metavar="K", help="K of them, a fixed draw")
    _folders(reproduce)
    reproduce.add_argument("--quiet", action="store_true", help="no progress bar")

    predict = sub.add_parser("predict", help="classify image files with a stored run's network: its top classes")
    predict.add_argument("run", metavar="RUN", help="a run id (deepcls results shows them)")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...), any size")
    predict.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per image (default: 3)")
    _folders(predict, data=False)

    report = sub.add_parser("report", help="execute the notebooks and render the HTML report")
    report.add_argument("--profile", default="quick", choices=PROFILE_NAMES, help=f"{PROFILE_HELP} (default: quick)")
    report.add_argument(
        "--jobs", type=_at_least_one, default=1, help="notebooks executed, and runs trained, at once (default: 1)"
    )
    report.add_argument("--notebooks", default=None, help="comma-separated notebook names (default: all)")
    _folders(report)
    report.add_argument("--force", action="store_true", help="retrain runs even if stored")
    report.add_argument(
        "--rerun", action="store_true", help="execute every notebook again, ignoring the execution cache"
    )
    report.add_argument(
        "--no-train",
        dest="train",
        action="store_false",
        help="train nothing: render the store as it is, missing runs shown as pending",
    )

    bench = sub.add_parser("bench", help="images/s of the deepcls engine vs a plain reference loop")
    bench.add_argument("--model", default="resnet18", help=_config_help("model", "resnet18"))
    bench.add_argument("--stem", default=None, help=_config_help("stem", "the model's"))
    bench.add_argument("--dataset", default="cifar10", help=_config_help("dataset", "cifar10"))
    bench.add_argument("--batch-size", default="128", help="one or more, comma-separated (e.g. 32,128)")
    bench.add_argument("--steps", type=int, default=20, help="timed training steps of each loop (default: 20)")
    bench.add_argument("--augment", default="flip,crop", metavar="OPS", help=_config_help("augment", "flip,crop"))
    bench.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=False, help=_config_help("compile", "no")
    )
    bench.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="deepcls's precision (default: auto, bf16 where the hardware has it natively); the reference loop is fp32",
    )
    bench.add_argument(
        "--compile-mode",
        default=None,
        help="on CUDA, also time torch.compile with this mode (e.g. reduce-overhead) against the manual graphs",
    )
    bench.add_argument(
        "--runs-at-once",
        default="4",
        help="the concurrent mode's run counts, comma-separated (default: 4; 0: leave it out)",
    )
    bench.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    bench.add_argument("--json", action="store_true", help="print one JSON object (a list for several batch sizes)")

    results = sub.add_parser("results", help="reported vs reproduced from the run store (--train: run missing rows)")
    results.add_argument("--profile", default="quick", choices=PROFILE_NAMES, help=f"{PROFILE_HELP} (default: quick)")
    results.add_argument("--tables", default=None, help="comma-separated table names (default: all)")
    results.add_argument("--rows", default=None, help="comma-separated row numbers (default: all)")
    results.add_argument(
        "--seeds",
        default="0",
        help="with --train: seeds to train, comma-separated (default: 0); the table pools every seed stored",
    )
    results.add_argument("--train", action="store_true", help="train the runs the store does not have, in order")
    results.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="with --train: stop cleanly within this many seconds, several runs at once (running again resumes)",
    )
    results.add_argument("--runs-at-once", type=int, default=None, help="with --budget-s: runs in flight (default: 8)")
    add_training_arguments(results)
    results.add_argument("--markdown", action="store_true", help="a Markdown table (as in results/RESULTS.md)")
    results.add_argument("--wide", action="store_true", help="every column on one line per row, however wide")

    ledger = sub.add_parser(
        "ledger", help="which of the report's conclusions hold (--plan: the seeds they need; --train: train them)"
    )
    ledger.add_argument("--profile", default="quick", choices=PROFILE_NAMES, help=f"{PROFILE_HELP} (default: quick)")
    ledger.add_argument("--conclusions", default=None, help="comma-separated conclusion ids (default: all)")
    action = ledger.add_mutually_exclusive_group()
    action.add_argument("--plan", action="store_true", help="list the runs that take undecided lines to the next look")
    action.add_argument("--train", action="store_true", help="train those runs, most expected decisions per hour first")
    action.add_argument(
        "--time",
        action="store_true",
        help="measure the seconds-per-epoch lines: both sides' training steps timed here, alternating "
        "(--device; on the CPU one thread, or --threads)",
    )
    action.add_argument(
        "--evidence",
        action="store_true",
        help="the runs behind each line instead: one row per conclusion, side and run (seed, run id, device, "
        "the value each metric reads)",
    )
    ledger.add_argument(
        "--repeats", type=_at_least_one, default=None, metavar="N", help="with --time: repeats per side (default: 10)"
    )
    ledger.add_argument("--device", default="auto", help="with --time: where to time (default: auto)")
    ledger.add_argument("--threads", type=_at_least_one, default=None, help="with --time on the CPU (default: 1)")
    ledger.add_argument(
        "--runs",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="with --plan or --train: only the plan's first N runs",
    )
    add_training_arguments(ledger)
    ledger.add_argument("--markdown", action="store_true", help="a Markdown table (as in results/RESULTS.md)")
    ledger.add_argument("--wide", action="store_true", help="every column on one line per conclusion, however wide")
    ledger.add_argument(
        "--csv",
        type=_a_path,
        default=None,
        metavar="PATH",
        help="write the numbers (both metrics, full precision) to PATH; - prints",
    )

    markdown = sub.add_parser("markdown", help="write results/RESULTS.md (every profile's tables) from the run store")
    markdown.add_argument("--profiles", default="paper,best,quick", help="comma-separated (default: paper,best,quick)")
    markdown.add_argument("--path", default=None, help="default: RESULTS.md in the results folder")
    _folders(markdown, data=False)
    markdown.add_argument("--readme", default=None, metavar="PATH", help="also rewrite the headline table of PATH")

    runs = sub.add_parser("runs", help="run archives: move finished runs between stores (a GPU node, a cluster job)")
    steps = runs.add_subparsers(dest="runs_command", required=True, metavar="{export,import}")
    export = steps.add_parser("export", help="pack finished runs into one .tar.gz")
    export.add_argument("run_ids", nargs="*", metavar="RUN", help="run ids (default: every finished run of --profile)")
    export.add_argument("--profile", default=None, choices=PROFILE_NAMES, help="without RUN: this profile's runs")
    export.add_argument("--out", required=True, help="the archive to write (.tar.gz)")
    _folders(export, data=False)
    load = steps.add_parser("import", help="verify an archive's runs and move them into the store")
    load.add_argument("archive", help="a .tar.gz written by deepcls runs export")
    _folders(load, data=False)
    load.add_argument("--replace", action="store_true", help="also replace finished runs the store has already")
    sub.add_parser("info", help="models, datasets, device and versions")
    return parser


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how many at once a command's ``--train`` runs, and the folders it reads."""
    parser.add_argument(
        "--jobs",
        type=_at_least_one,
        default=1,
        help="with --train: runs trained at once, each with its share of the cores (default: 1)",
    )
    parser.add_argument(
        "--executor", default="local", choices=("local", "ray"), help="with --train: where runs train (default: local)"
    )
    parser.add_argument(
        "--address",
        default=None,
        help="with --executor ray: the Ray cluster's head, HOST:PORT (default: $RAY_ADDRESS, else a Ray of its own "
        "on 127.0.0.1)",
    )
    parser.add_argument(
        "--gpus-per-run",
        type=_share,
        default=0,
        help="with --executor ray: GPUs per run, e.g. 0.25 (default: 0)",
    )
    parser.add_argument("--keep-weights", action="store_true", help=f"with --train: {KEEP_WEIGHTS}")
    parser.add_argument("--tensorboard", type=_a_path, default=None, metavar="DIR", help=f"with --train: {TENSORBOARD}")
    _folders(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch to the command's handler, and turn what goes wrong into one line and an exit code."""
    args = build_parser().parse_args(argv)
    try:
        with nullcontext() if _shows_progress(args) else activity(args.command):  # a status line past two seconds
            return COMMANDS[args.command](args)
    except DeepclsError as err:
        return _fail(str(err), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to resume from the last finished epoch", EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader stopped early (`| head`): quiet, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0
    except OSError as err:  # the machine, not the input: a full disk, a vanished folder
        where = f" ({err.filename})" if err.filename else ""
        hint = "; free some space and run the same command again to resume" if err.errno == errno.ENOSPC else ""
        return _fail(f"{err.strerror or err}{where}{hint}", EXIT_FAILED)


OWN_PROGRESS = ("train", "reproduce", "report", "bench")  # commands whose bars or lines say how far they are


def _shows_progress(args: argparse.Namespace) -> bool:
    """True when the command shows its own progress (training bars, the report's lines): no status
    line is drawn over it."""
    return args.command in OWN_PROGRESS or bool(getattr(args, "train", False) or getattr(args, "time", False))


def _torch_ready() -> None:
    """Before any torch work starts the threads that must inherit it: flush denormals to zero
    (deepcls.engine.runtime). Only the commands that train or evaluate call it, so reading commands
    never import torch."""
    from deepcls.engine.runtime import flush_denormals

    flush_denormals()


def _fail(message: str, code: int) -> int:
    message = " ".join(message.split())  # one line, even when a library's message has several
    print(f"deepcls: error: {message}", file=sys.stderr)
    return code


def _report(args: argparse.Namespace) -> int:
    from deepcls.execution.runner import run_grid
    from deepcls.report.build import build_report

    _torch_ready()
    return build_report(
        profile=args.profile,
        jobs=args.jobs,
        data_dir=args.data_dir,
        results_dir=args.results_dir,
        force=args.force,
        train=args.train,
        rerun=args.rerun,
        only=api.names("--notebooks", args.notebooks) if args.notebooks is not None else None,
        trainer=functools.partial(run_grid, data_dir=args.data_dir, results_dir=args.results_dir, jobs=args.jobs),
    )


def _bench(args: argparse.Namespace) -> int:
    from deepcls.bench.engine import run_bench

    sizes = api.whole_numbers("--batch-size", args.batch_size)
    api.whole_numbers("--runs-at-once", args.runs_at_once)
    if args.steps < 1 or min(sizes) < 1:
        raise DeepclsError(f"--steps and --batch-size must be >= 1, got {args.steps} and {args.batch_size}")
    _torch_ready()
    return run_bench(args)


def _train(args: argparse.Namespace) -> int:
    from deepcls.engine import runtime
    from deepcls.engine.fit import fit
    from deepcls.report.formatting import run_outcome

    config = config_from_args(args)
    _torch_ready()
    runtime.configure(config.device, config.threads)
    try:
        record = fit(
            config,
            data_dir=args.data_dir,
            results_dir=args.results_dir,
            force=args.force,
            progress=not args.quiet,
            keep_weights=args.keep_weights,
            tensorboard=args.tensorboard,
        )
    except (DeepclsError, OSError):
        raise
    except Exception as err:  # fit has recorded it (or kept the finished run it was to replace)
        if os.environ.get("DEEPCLS_TRACEBACK"):
            raise
        return _fail(
            f"run {config.run_id} failed: {type(err).__name__}: {err} (set DEEPCLS_TRACEBACK=1 to see where)",
            EXIT_FAILED,
        )
    print(run_outcome(record))
    return 0 if record.metrics["status"] == "complete" else 1


def _results(args: argparse.Namespace) -> int:

    from deepcls.analysis.results import results_table
    from deepcls.paper import grids as experiments
    from deepcls.paper.conclusions import conclusions_first
    from deepcls.report import formatting as tables
    from deepcls.store.runs import RunStore

    _needs_train(args)
    names = api.names("--tables", args.tables) if args.tables is not None else list(experiments.ALL_TABLES)
    if strangers := sorted(set(names) - set(experiments.ALL_TABLES)):
        raise DeepclsError(unknown("table(s)", strangers, experiments.ALL_TABLES))
    seeds = list(api.whole_numbers("--seeds", args.seeds))
    rows = list(api.whole_numbers("--rows", args.rows)) if args.rows else None
    grid = experiments.grid(names, args.profile, seeds, rows)
    if grid.empty:
        raise DeepclsError(f"no row {args.rows} in table(s) {', '.join(names)}")
    store = RunStore(args.results_dir)
    if args.budget_s is not None or args.runs_at_once is not None:
        if not args.train:
            raise DeepclsError("--budget-s and --runs-at-once go with --train")
        _train_within(args, grid, names if args.tables else None, store)
    elif args.train:  # the runs the report's conclusions compare first (they fill the ledger soonest)
        _train_grid(args, conclusions_first(grid)["config"], store)
    results = results_table(grid, store)
    if args.markdown:
        print(tables.to_markdown(results))
    elif args.wide:
        shown = tables.format_results(results).drop(columns=["profile"])
        shown["status"] = [s + (f" ({p})" if p else "") for s, p in zip(shown["status"], results["progress"])]
        print(shown.to_string(index=False))
    else:
        print(tables.terminal_results(results, _width()))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    _torch_ready()
    from deepcls.engine.evaluate import evaluate_run
    from deepcls.store.runs import RunStore

    found = evaluate_run(args.run, RunStore(args.results_dir), args.data_dir, args.device)
    print("\n".join(found.lines()))
    return 0 if found.agrees else EXIT_FAILED


def _reproduce(args: argparse.Namespace) -> int:
    _torch_ready()
    from deepcls.engine.reproduce import pick_runs, reproduce
    from deepcls.store.runs import RunStore

    if not args.runs and args.profile is None:
        raise DeepclsError("name the runs to reproduce (RUN ...) or a --profile to draw them from")
    store = RunStore(args.results_dir)
    runs = pick_runs(store, args.runs, args.profile, args.sample)
    if not runs:
        raise DeepclsError(f"no complete stored {args.profile} runs in {store.runs}")
    failed = 0
    for run_id in runs:
        found = reproduce(run_id, store, args.data_dir, progress=not args.quiet)
        print("\n".join(found.lines()), flush=True)
        failed += found.failed
    if failed:
        print(f"{failed} of {len(runs)} retrains in the stored run's numeric class were not bit-identical")
    return 1 if failed else 0


def _predict(args: argparse.Namespace) -> int:
    _torch_ready()
    from deepcls.engine.predict import predict
    from deepcls.report.formatting import predictions

    found = predict(args.run, args.images, args.top, results_dir=args.results_dir)
    print(predictions(args.images, found))
    return 0


def _train_within(args: argparse.Namespace, grid: pd.DataFrame, tables: list[str] | None, store: RunStore) -> None:
    _torch_ready()
    from deepcls.execution.interleaved import RUNS_AT_ONCE
    from deepcls.execution.timebox import train_within

    budget, runs = args.budget_s, args.runs_at_once
    if args.tensorboard:
        raise DeepclsError("--tensorboard goes with --train alone, not with --budget-s or --runs-at-once")
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise DeepclsError(f"--budget-s must be a positive number of seconds, got {budget}")
    if runs is not None and runs < 1:
        raise DeepclsError(f"--runs-at-once must be >= 1, got {runs}")
    summary = train_within(
        grid,
        store,
        tables=tables,
        budget_s=budget,
        runs=runs or RUNS_AT_ONCE,
        data_dir=args.data_dir,
        keep_weights=args.keep_weights,
    )
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))


def _time_lines(args: argparse.Namespace, conclusions: Sequence[Conclusion], store: RunStore) -> None:
    """Measure and store each seconds line's paired benchmark (deepcls.bench.steps)."""
    from deepcls.analysis.ledger import side_config
    from deepcls.bench.steps import REPEATS, time_pair
    from deepcls.engine.runtime import thread_count
    from deepcls.store.timings import save_timing

    if not conclusions:
        raise DeepclsError("--time: none of the chosen conclusions is a seconds line")
    _torch_ready()
    store.ensure_writable()
    for conclusion in conclusions:
        a, b = (dataclasses.replace(side_config(side, args.profile), device=args.device) for side in conclusion.sides)
        with thread_count(args.threads or 1):  # one thread per run, as the costs and the runs are timed
            timing = time_pair(conclusion.id, a, b, args.data_dir, repeats=args.repeats or REPEATS)
        print(f"wrote {save_timing(store, timing)} ({timing.repeats} repeats on {timing.device})")


def _train_grid(args: argparse.Namespace, configs: Sequence[RunConfig], store: RunStore) -> None:
    _torch_ready()
    from deepcls.execution import runner

    executor = None
    if args.executor == "ray":
        executor = runner.make_executor("ray", address=args.address, num_gpus=args.gpus_per_run)
    runner.run_grid(
        configs,
        store=store,
        data_dir=args.data_dir,
        jobs=args.jobs,
        executor=executor,
        keep_weights=args.keep_weights,
        tensorboard=args.tensorboard,
    )


def _ledger(args: argparse.Namespace) -> int:
    from deepcls.analysis import ledger
    from deepcls.analysis import plan as planner
    from deepcls.atomic import write_text
    from deepcls.config import threads_per_job
    from deepcls.report import formatting as tables
    from deepcls.report import verdicts
    from deepcls.store.runs import RunStore

    known = {c.id: c for c in ledger.CONCLUSIONS}
    ids = api.names("--conclusions", args.conclusions) if args.conclusions is not None else list(known)
    if strangers := [i for i in ids if i not in known]:
        raise DeepclsError(unknown("conclusion(s)", strangers, known))
    conclusions = [known[i] for i in ids]
    _needs_train(args, also_without=("--jobs",) if args.plan else ())
    if args.runs is not None and not (args.plan or args.train):
        raise DeepclsError("--runs needs --plan or --train")
    if (args.repeats or args.threads) and not args.time:
        raise DeepclsError("--repeats and --threads need --time")
    store = RunStore(args.results_dir)
    on = None  # the ledger's cost notes: on the reference device, as RESULTS.md's (no device, nor torch, needed)
    if args.plan or args.train:
        from deepcls.numeric import target_device

        on = target_device(threads=threads_per_job(args.jobs))  # where they would train (Ray: its driver's)
        whole = planner.plan(args.profile, store, conclusions, on)
        plan = whole.iloc[: args.runs]
        later = whole.iloc[len(plan) :]
        if args.plan:
            if len(plan):
                shown = tables.format_plan(plan).to_string(index=False) if args.wide else None
                print((shown or tables.terminal_plan(plan, _width())) + "\n")
            wall_s = planner.wall_seconds(plan, args.jobs)
            summary = tables.plan_summary(plan, args.profile, later, jobs=args.jobs, wall_s=wall_s)
            print(textwrap.fill(summary, width=max(40, _width())))
            return 0
        _train_grid(args, plan["config"], store)
    if args.time:
        _time_lines(args, [c for c in conclusions if c.quantity == "seconds"], store)
    if args.evidence:
        return _evidence(args, ledger.evidence(args.profile, store, conclusions))
    table = ledger.ledger(args.profile, store, conclusions, on)
    if args.csv == "-":
        print(verdicts.to_csv(table), end="")
        return 0
    if args.csv:
        write_text(args.csv, verdicts.to_csv(table))
        print(f"wrote {args.csv}: {verdicts.summary(table)}")
        return 0
    shown = tables.format_ledger(table).drop(columns=["id"])
    if args.markdown:
        print(tables.frame_to_markdown(shown))
        return 0
    if args.wide:
        print(shown.to_string(index=False))
        return 0
    print(textwrap.fill(verdicts.summary(table), width=max(40, _width())) + "\n")
    print(tables.terminal_ledger(table, _width()))
    return 0


def _evidence(args: argparse.Namespace, runs: pd.DataFrame) -> int:
    """``deepcls ledger --evidence``: the per-run values behind the ledger, as CSV, Markdown or a terminal table."""
    from deepcls.atomic import write_text
    from deepcls.report import formatting as tables

    if args.csv == "-":
        print(runs.to_csv(index=False), end="")
    elif args.csv:
        write_text(args.csv, runs.to_csv(index=False))
        print(f"wrote {args.csv}: {len(runs)} runs behind {runs['id'].nunique()} conclusions")
    elif runs.empty:
        print(f"No stored run is behind these conclusions at `{args.profile}` yet.")
    elif args.markdown:
        print(tables.frame_to_markdown(tables.format_evidence(runs)))
    else:
        print(tables.format_evidence(runs).to_string(index=False))
    return 0


def _runs(args: argparse.Namespace) -> int:
    from deepcls.store import archive
    from deepcls.store.runs import FINISHED, RunStore

    store = RunStore(args.results_dir)
    if args.runs_command == "import":
        merged, skipped = archive.merge_runs(args.archive, store, args.replace)
        print(f"imported {len(merged)} runs, skipped {len(skipped)} the store has already")
        return 0
    if args.run_ids and args.profile:
        raise DeepclsError("give run ids or --profile, not both")
    for run_id in args.run_ids:
        record = store.record(run_id)
        if record is None or record.status not in FINISHED:
            raise DeepclsError(f"run {run_id} is not a finished run in {store.root}")
    ids = list(dict.fromkeys(args.run_ids)) or [
        run_id
        for run_id in store.run_ids()
        if (record := store.record(run_id)) is not None
        and record.status in FINISHED
        and args.profile in (None, record.config.profile)
    ]
    if not ids:
        which = f"finished {args.profile} runs" if args.profile else "finished runs"
        raise DeepclsError(f"no {which} to export in {store.runs}: an empty archive is refused")
    archive.pack_runs(store, ids, args.out)
    print(f"exported {len(ids)} runs to {args.out}")
    return 0


def _markdown(args: argparse.Namespace) -> int:
    from deepcls.atomic import write_text
    from deepcls.report.markdown import headline_text, write_results
    from deepcls.store.runs import RunStore

    store = RunStore(args.results_dir)
    readme = headline_text(args.readme, store) if args.readme else None  # refused before anything is written
    path = write_results(args.path or store.root / "RESULTS.md", args.profiles.split(","), store)
    print(f"wrote {path}")
    if readme is not None:
        write_text(args.readme, readme)
        print(f"updated {args.readme}")
    return 0


TRAINING_FLAGS = {  # flag -> (attribute, default): they act only with --train
    "--executor": ("executor", "local"),
    "--address": ("address", None),
    "--gpus-per-run": ("gpus_per_run", 0),
    "--keep-weights": ("keep_weights", False),
    "--tensorboard": ("tensorboard", None),
    "--budget-s": ("budget_s", None),
    "--runs-at-once": ("runs_at_once", None),
    "--jobs": ("jobs", 1),
}


def _needs_train(args: argparse.Namespace, also_without: Sequence[str] = ()) -> None:
    """One error line for flags given without --train that would otherwise be silently ignored."""
    if args.train:
        return
    given = [
        flag
        for flag, (name, default) in TRAINING_FLAGS.items()
        if flag not in also_without and getattr(args, name, default) != default
    ]
    if given:
        raise DeepclsError(f"{', '.join(given)} act{'s' * (len(given) == 1)} only with --train")


def _width() -> int:
    """The terminal's width: ``$COLUMNS``, else the terminal's, else 100."""
    return shutil.get_terminal_size((100, 24)).columns


def _info() -> int:
    from deepcls.report.formatting import machine_info

    print(machine_info())
    return 0


COMMANDS = {  # subcommand -> handler: each parses nothing more, calls the API, prints
    "train": _train,
    "evaluate": _evaluate,
    "reproduce": _reproduce,
    "predict": _predict,
    "report": _report,
    "bench": _bench,
    "results": _results,
    "ledger": _ledger,
    "markdown": _markdown,
    "runs": _runs,
    "info": lambda args: _info(),
}


if __name__ == "__main__":
    sys.exit(main())
