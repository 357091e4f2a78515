"""The ledger (deepcls.analysis.ledger) in words and for other tools: its CSV, the one-sentence
summary, a small table of verdicts a newcomer reads, and the glossary shown above the ledger in
RESULTS.md and the HTML report."""

from __future__ import annotations

import html
import math
import re

import pandas as pd

from deepcls.analysis.ledger import LOOKS, MIN_COLLAPSE_SEEDS, MIN_SEEDS, PRIMARY, VERDICTS, verdict_counts
from deepcls.report.formatting import LEDGER_COLUMNS, require

CSV_COLUMNS = [
    "profile", "id", "metric", "role", "registration", "fixed_on", "confirmatory", "conclusion", "measure",
    "look", "n_a", "mean_a", "std_a", "n_b", "mean_b", "std_b", "difference", "low", "high", "tost_low",
    "tost_high", "margin", "test", "df", "prior_df", "p_value", "p_tost", "p_sequential", "p_sequential_tost",
    "p_adjusted", "family", "prob_greater", "predict_low", "predict_high", "image_noise", "boot_low", "boot_high",
    "ratio", "ratio_low", "ratio_high", "seeds_power", "seeds_power_high", "seeds_equivalence",
    "seeds_equivalence_high", "reported", "report_inside", "verdict", "devices", "reading",
]  # fmt: skip
COUNTS = ("n_a", "n_b", "look", "confirmatory", "family", "seeds_power", "seeds_power_high", "seeds_equivalence")
COUNTS += ("seeds_equivalence_high",)

MEANINGS = {
    "holds": "the report's claim holds: a difference in its direction, significant after the correction",
    "reversed": "the opposite of the claim holds, significant after the correction",
    "equivalent": "no difference as large as the line's margin, shown after the correction",
    "suggestive": "significant before the correction only: not a finding",
    "inconclusive": "tested, and neither shown; the line gives the seeds a planned test needs",
    "undecided": f"fewer than {MIN_SEEDS} seeds a side ({MIN_COLLAPSE_SEEDS} for a collapse rate)",
    "not comparable": "a side collapsed to chance in some seeds",
}

GLOSSARY = f"""- **Primary metric**: test accuracy at the final epoch. The report's highest test accuracy over
  epochs is shown as the **secondary** metric; the headline counts only the primary.
- **Family and correction**: every claim line of `deepcls/paper/conclusions.csv` is one test of one
  family, tested or not (an untested claim counts with p = 1), so its size never changes. Holm's
  step-down adjusts the family's p-values; a verdict is named only when its **adjusted p** is below
  0.05. **Sanity** lines check the set-up and sit outside the family; **extension** lines (conclusions
  of one's own) are a family of their own, never counted among the report's claims.
- **Looks**: a line is read at {", ".join(map(str, LOOKS))} seeds a side (its first seeds). Its
  p-values are repeated p-values of a Pocock group-sequential design, so adding seeds after looking
  keeps the error rate.
- **Margin**: the smallest difference that would matter; **equivalent** means the 90% interval lies
  inside it (two one-sided tests). **Post-hoc**: the margin or definition was fixed after the line's
  data were seen (`deepcls/paper/registration.csv`); today every line is post-hoc.
- **Prediction interval**: where one run of ours would fall; the report's single run is judged
  against it. **P(A > B)**: the chance that a run of side a beats a run of side b.
- **Moderated**: a side's variance shrunk towards its family of rows (empirical Bayes), which
  steadies it at 3 seeds. **Test images**: where runs kept per-image predictions, a bootstrap over
  seeds and test images; older runs did not, so their intervals count seed noise only."""


def to_csv(table: pd.DataFrame) -> str:
    """The ledger's numbers for other tools: one line per conclusion and metric, full precision
    (counts as integers; ``p_adjusted`` empty for sanity lines)."""
    frame = table.reindex(columns=CSV_COLUMNS)
    for column in COUNTS:
        values = [_count(v) for v in frame[column]]
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame.to_csv(index=False)


def _count(value: object) -> object:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "over 10000" if value == math.inf else value
    return int(value)


def summary(table: pd.DataFrame) -> str:
    """One sentence: the claims' verdicts on the primary metric after the correction, the suggestive
    ones, whether the margins were registered, and the sanity lines; then, where there are any, the
    extension lines (conclusions of the user's own: never among the report's claims) in a sentence
    of their own."""
    require(table, LEDGER_COLUMNS, "ledger_summary needs a ledger (dc.ledger)")
    claims = table[(table["metric"] == PRIMARY) & (table["role"] == "claim")]
    n = claims["id"].nunique()
    counts = verdict_counts(table, PRIMARY, "claim")
    named = ", ".join(f"{counts[v]} {v}" for v in ("holds", "reversed", "equivalent"))
    rest = ", ".join(f"{counts[v]} {v}" for v in VERDICTS[3:] if counts[v])
    post_hoc = int((claims.get("registration", pd.Series(dtype=object)) == "post-hoc").sum())
    registered = (
        "every margin was fixed after its data were seen (post-hoc)"
        if post_hoc == n and n
        else f"{post_hoc} of the margins were fixed after their data were seen (post-hoc)"
    )
    sanity = verdict_counts(table, PRIMARY, "sanity")
    checks = ", ".join(f"{k} {v}" for v, k in sanity.items() if k)
    family = int(claims["family"].max()) if "family" in claims and claims["family"].notna().any() else 0
    return (
        f"Of the report's {n} claims, on the final epoch after Holm's correction over all {family}: {named}"
        + (f"; {rest}" if rest else "")
        + f". {registered.capitalize()}."
        + (f" Sanity checks: {checks}." if checks else "")
        + _extensions(table)
    )


def _extensions(table: pd.DataFrame) -> str:
    """The extension lines' sentence of the summary: their verdicts after Holm's correction over
    them alone; "" when the ledger has none."""
    lines = table[(table["metric"] == PRIMARY) & (table["role"] == "extension")]
    if lines.empty:
        return ""
    counts = ", ".join(f"{k} {v}" for v, k in verdict_counts(table, PRIMARY, "extension").items() if k)
    n = lines["id"].nunique()
    return f" Extensions ({n} line{'s' * (n != 1)} added to the report, Holm over them alone): {counts}."


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """The claims' and sanity lines' verdicts on the primary metric, counted, with what each means;
    an ``extensions`` column beside them when the ledger has extension lines."""
    require(table, LEDGER_COLUMNS, "verdict_table needs a ledger (dc.ledger)")
    columns = {"claims": "claim", "sanity checks": "sanity"}
    if (table["role"] == "extension").any():
        columns["extensions"] = "extension"
    counts = {name: verdict_counts(table, PRIMARY, role) for name, role in columns.items()}
    return pd.DataFrame(
        {
            "verdict": list(VERDICTS),
            **{name: [counted[v] for v in VERDICTS] for name, counted in counts.items()},
            "what it means": [MEANINGS[v] for v in VERDICTS],
        }
    )


def glossary_html() -> str:
    """:data:`GLOSSARY` as an HTML list (bold and code spans kept)."""
    items = [" ".join(item.split()) for item in GLOSSARY.split("\n- ")]
    out = []
    for item in items:
        text = html.escape(item.removeprefix("- "))
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        out.append("<li>" + re.sub(r"`(.+?)`", r"<code>\1</code>", text) + "</li>")
    return '<ul class="glossary">' + "".join(out) + "</ul>"
