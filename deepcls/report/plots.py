"""Figures for the notebooks: curves, confusion matrices, image grids, reported vs reproduced."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from deepcls.data import DATASETS, load_dataset
from deepcls.store.runs import RunRecord

sns.set_theme(style="whitegrid", context="notebook")
# Every figure is drawn a page wide, since the pages show each image at their full width: 12 inches
# at 100 dpi is about the 1,200-1,300 pixels of a page in a 1,400-pixel window, so text keeps its size
# and the committed HTML stays small.
PAGE_WIDTH = 12.0
DPI = 100


def _figure(ncols: int = 1, height: float = 3.6, width: float = PAGE_WIDTH) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), dpi=DPI, squeeze=False)
    return fig, axes[0]


def pending(message: str = "no stored run yet at this profile") -> plt.Figure:
    """A thin placeholder figure for results that have not been run (a page wide, like the rest)."""
    fig, (ax,) = _figure(height=0.6)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#666666")
    return fig


def bar_label(table: str, row: int) -> str:
    """A results line's name on a plot: its table and row ("resnet_cifar10 · 3"), never ambiguous
    when a figure shows several tables."""
    return f"{table} · {row}"


def reported_vs_reproduced(results: pd.DataFrame, title: str = "") -> plt.Figure:
    """Paired horizontal bars of reported and reproduced highest test accuracy per line, first line
    on top, each named by table and row (error bars: std); the legend sits outside the axes."""
    labels = [bar_label(t, r) for t, r in zip(results["table"], results["row"])]
    fig, (ax,) = _figure(height=0.28 * len(results) + 1.4)
    y = np.arange(len(results))
    ax.barh(y - 0.2, results["reported_test"], 0.4, label="reported", color="#9aa5b1")
    ax.barh(
        y + 0.2,
        results["test_mean"],
        0.4,
        xerr=results["test_std"].fillna(0),
        label="reproduced (mean ± std over seeds)",
        color="#2a6f97",
        capsize=3,
    )
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("highest test accuracy (%)")
    known = pd.concat([results["reported_test"], results["test_mean"]]).dropna()
    if len(known):
        ax.set_xlim(max(0.0, known.min() - 10), min(100.0, known.max() + 3))
    ax.set_title(title or f"reported vs reproduced ({results['profile'].iloc[0]} profile)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def curves(records: Sequence[RunRecord | None], labels: Sequence[str] | None = None) -> plt.Figure:
    """Loss and train/test accuracy per epoch for one or more runs (pending ones are skipped)."""
    labels = list(labels) if labels is not None else [r.run_id if r else "" for r in records]
    kept = [(r, label) for r, label in zip(records, labels) if r is not None and len(r.history)]
    if not kept:
        return pending()
    records, labels = [r for r, _ in kept], [label for _, label in kept]
    fig, (loss_ax, acc_ax) = _figure(ncols=2)
    for record, label, color in zip(records, labels, sns.color_palette(n_colors=len(records))):
        h = record.history
        loss_ax.plot(h["epoch"], h["train_loss"], "--", color=color, label=f"{label} train")
        loss_ax.plot(h["epoch"], h["test_loss"], "-", color=color, label=f"{label} test")
        acc_ax.plot(h["epoch"], h["train_acc"], "--", color=color, label=f"{label} train")
        acc_ax.plot(h["epoch"], h["test_acc"], "-", color=color, label=f"{label} test")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="train (dashed) and test accuracy")
    fig.tight_layout()
    handles, names = acc_ax.get_legend_handles_labels()
    # below both panels, in two columns (the labels are long): it hides no line and keeps the figure a page wide
    fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
    return fig


def confusion(record: RunRecord | None, ax: plt.Axes | None = None, title: str | None = None) -> plt.Figure:
    """Confusion matrix (counts) of a run's final model on its test set."""
    if ax is None:
        fig, (ax,) = _figure(width=PAGE_WIDTH / 2, height=4.8)
    else:
        fig = ax.figure
    if record is None or record.confusion is None:
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title or ''}: no stored run yet", ha="center", va="center", color="#666666")
        return fig
    names = DATASETS[record.config.dataset].classes
    sns.heatmap(
        record.confusion,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=False,
        ax=ax,
        xticklabels=names,
        yticklabels=names,
        annot_kws={"size": 7},
    )
    ax.set(xlabel="predicted", ylabel="true", title=title or record.run_id)
    fig.tight_layout()
    return fig


def confusion_pair(a: RunRecord | None, b: RunRecord | None, titles: tuple[str, str]) -> plt.Figure:
    """Two confusion matrices side by side (e.g. without and with SE)."""
    fig, axes = _figure(ncols=2, height=5.4)
    confusion(a, axes[0], titles[0])
    confusion(b, axes[1], titles[1])
    fig.tight_layout()
    return fig


def sample_grid(
    record: RunRecord | None, kind: str = "wrong", n: int = 24, data_dir: str | None = None, cols: int = 8
) -> plt.Figure:
    """Test images a run classified correctly (``kind="correct"``) or wrongly, with labels."""
    if record is None or f"{kind}_index" not in record.samples:
        return pending()
    names = DATASETS[record.config.dataset].classes
    _, test = load_dataset(record.config.dataset, data_dir)
    index = record.samples[f"{kind}_index"][:n]
    pred = record.samples[f"{kind}_pred"][:n]
    rows = max(1, int(np.ceil(len(index) / cols)))
    side = PAGE_WIDTH / cols
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH, 1.15 * side * rows), dpi=DPI, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, p in zip(axes.flat, index, pred):
        image = test.x[int(i)].numpy()
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        true = names[int(test.y[int(i)])]
        label = f"{names[p]}" if kind == "correct" else f"{true}→{names[p]}"
        ax.set_title(label, fontsize=10, color="black" if kind == "correct" else "firebrick")
    fig.suptitle("correctly classified" if kind == "correct" else "misclassified (true→predicted)", fontsize=12)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {  # Okabe-Ito: told apart with every common colour-vision deficiency
    "holds": "#0072B2",
    "reversed": "#D55E00",
    "equivalent": "#009E73",
    "suggestive": "#56B4E9",
    "inconclusive": "#999999",
    "undecided": "#E69F00",
    "not comparable": "#CC79A7",
}
# ... and by shape, so that no verdict rests on colour alone (in grey print too): filled where the
# verdict is named after the correction, hollow where nothing is shown yet
VERDICT_MARKERS = {
    "holds": "o",
    "reversed": "p",
    "equivalent": "D",
    "suggestive": "^",
    "inconclusive": "s",
    "undecided": "v",
    "not comparable": "*",
}
NAMED_VERDICTS = ("holds", "reversed", "equivalent")


def _verdict_marker(verdict: str) -> dict:
    """Scatter/Line2D keywords drawing ``verdict``'s marker: its shape and colour, filled or hollow."""
    colour = VERDICT_COLOURS[verdict]
    face = colour if verdict in NAMED_VERDICTS else "white"
    return {"marker": VERDICT_MARKERS[verdict], "color": colour, "markerfacecolor": face, "markeredgecolor": colour}


def left_out(ledger: pd.DataFrame, metric: str = "honest") -> dict[str, list[str]]:
    """The lines of ``ledger`` that :func:`forest` does not draw, by why: not measured in accuracy
    points (seconds, rates, ranks have their own scale) or no margin of ours yet (no runs, or a side
    collapsed: named with the verdict that says which). Each line is named by its id (its conclusion
    where the frame has no id)."""
    lines = ledger[ledger["metric"] == metric]
    names = lines["id"] if "id" in lines else lines["conclusion"]
    points = lines["measure"].str.contains("(points)", regex=False)
    empty = points & lines["difference"].isna()
    return {
        "not in accuracy points": list(names[~points]),
        "no margin of ours yet": [f"{n} ({v})" for n, v in zip(names[empty], lines["verdict"][empty])],
    }


def forest(ledger: pd.DataFrame, metric: str = "honest") -> plt.Figure:
    """One line per conclusion measured in accuracy points: our difference (marker) and its 95%
    interval (bar), coloured and shaped by verdict (legend beside the axes); the report's own margin
    as a cross; zero marked; each label ends with the seeds per side (n=a/b). The axis is linear
    within ±1 point and logarithmic beyond (symlog), so MNIST's tenths of a point and CIFAR-10's
    points are both readable; it spans the margins up to 25 points, and a value beyond it is drawn at
    the edge as an arrowhead with its number, so a huge margin (a collapsed run) neither hides the
    rest nor disappears. A footnote names the lines left out and why (:func:`left_out`)."""
    lines = ledger[
        (ledger["metric"] == metric)
        & ledger["measure"].str.contains("(points)", regex=False)
        & ledger["difference"].notna()
    ]
    lines = lines.iloc[::-1]  # first conclusion on top
    if lines.empty:
        return pending("no conclusion measured in accuracy points")
    fig, (ax,) = _figure(width=14.0, height=0.3 * len(lines) + 2.4)
    y = np.arange(len(lines))
    colours = [VERDICT_COLOURS[v] for v in lines["verdict"]]
    values = pd.concat([lines["low"], lines["high"], lines["difference"], lines["reported"]]).dropna()
    span = float(np.clip(values.abs().max() * 1.1 if len(values) else 5.0, 2.0, 25.0))  # symlog: room to 25
    edge = 0.97 * span
    ax.hlines(y, lines["low"].clip(-edge, edge), lines["high"].clip(-edge, edge), colors=colours, lw=2)
    ours, theirs = lines["difference"].to_numpy(float), lines["reported"].to_numpy(float)
    inside = ~(np.abs(ours) > edge)
    for row, (our, verdict) in enumerate(zip(ours, lines["verdict"])):
        if inside[row]:
            ax.plot([our], [row], ls="none", ms=7, zorder=3, **_verdict_marker(verdict))
    ax.scatter(theirs.clip(-edge, edge), y, marker="x", c="black", s=30, zorder=4)
    longest = 0
    for row, (our, their, colour) in enumerate(zip(ours, theirs, colours)):
        off = [f"{who} {value:+.1f}" for who, value in (("ours", our), ("report", their)) if abs(value) > edge]
        if not off:
            continue
        side = 1.0 if (our if abs(our) > edge else their) > 0 else -1.0
        if abs(our) > edge:
            ax.scatter([side * edge], [row], marker=">" if side > 0 else "<", c=[colour], s=40, zorder=5)
        right = side > 0  # the numbers go in the right margin; a negative one inside the left edge
        longest = max(longest, len(", ".join(off)) if right else 0)
        ax.annotate(
            ", ".join(off),
            (1.0 if right else 0.0, row),
            xycoords=("axes fraction", "data"),
            xytext=(4 if right else 12, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=9,
        )
    ax.axvline(0, color="black", lw=0.8)
    one_side = lines["n_b"].isna()  # a quantity against a threshold
    seeds = [
        f"n={int(a)}" + ("" if alone else f"/{int(b)}") for a, b, alone in zip(lines["n_a"], lines["n_b"], one_side)
    ]
    ax.set_yticks(y, [f"{c} ({n})" for c, n in zip(lines["conclusion"], seeds)], fontsize=10)  # seeds per side
    ax.set_ylim(-0.7, len(lines) - 0.3)
    ax.grid(axis="y", color="0.9", lw=0.6)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(-span, span)
    ticks = [t for t in (0.5, 1, 3, 10) if t < span]
    ticks = [-t for t in reversed(ticks)] + [0] + ticks
    ax.set_xticks(ticks, [f"{t:+g}" if t else "0" for t in ticks], fontsize=10)
    ax.minorticks_off()
    ax.set_xlabel(
        f"margin in the claimed direction, accuracy points "
        f"({'final epoch' if metric == 'honest' else 'highest over epochs'}); linear within ±1, logarithmic beyond",
        fontsize=10,
    )
    handles = [
        plt.Line2D([], [], color="0.3", lw=2, marker="o", ms=7, label="ours: mean, 95% interval"),
        plt.Line2D([], [], ls="none", marker="x", color="black", label="the report's margin"),
        *(plt.Line2D([], [], lw=2, ms=7, **_verdict_marker(v), label=v) for v in VERDICT_COLOURS),
    ]
    ax.legend(  # beside the axes, past the numbers of off-axis margins, so it never covers a line
        handles=handles,
        fontsize=9,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        borderaxespad=1.0 + 0.6 * longest,
        title="verdict (colour and shape)",
        title_fontsize=9,
        frameon=False,
    )
    ax.set_title(f"Which of the report's conclusions hold ({lines['profile'].iloc[0]} profile)", fontsize=13)
    missing = [f"{why}: {', '.join(names)}" for why, names in left_out(ledger, metric).items() if names]
    if missing:
        note = textwrap.fill("Not shown — " + "; ".join(missing) + ".", width=170)
        fig.text(0.0, 0.0, note, fontsize=9, va="top", ha="left", color="0.25")
    fig.tight_layout()
    return fig
