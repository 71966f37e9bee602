"""Figures of the bias audit: rates by group, confusion, calibration, verification curves.

Every function takes the tables of :mod:`generator.bias.classification` or
:mod:`generator.bias.verification` and returns a ``Figure``. Pass the same
ordered ``groups`` list to every figure of a report: a group's colour is its
position in that list (Okabe-Ito first, then Paul Tol's muted scheme), so it
stays the same across figures. Missing values are drawn as "n/a", never as 0.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy.stats import norm

from generator.figures.export import STYLE, new_figure, styled
from generator.ordering import natural_sorted

__all__ = ["GROUP_PALETTE", "confusion_matrices", "det_curves", "fpr_inflation", "group_colours",
           "metric_by_group", "rank1_heatmap", "reliability", "roc_curves", "score_violins"]

GROUP_PALETTE = (*STYLE["axes.prop_cycle"].by_key()["color"],
                 "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499")
OVERALL = "all"
OVERALL_COLOUR = "#555555"
METRIC_LABELS = {"base_rate": "base rate", "accuracy": "accuracy", "tpr": "TPR (recall)", "fpr": "FPR",
                 "fnr": "FNR", "precision": "precision (PPV)", "selection_rate": "selection rate", "f1": "F1"}
_DET_TICKS = (1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99)




def group_colours(groups: Sequence[str]) -> dict[str, str]:
    """One colour per group by its position in ``groups`` (cycling after 17 groups)."""
    return {group: GROUP_PALETTE[k % len(GROUP_PALETTE)] for k, group in enumerate(groups)}


def _order(values: pd.Series, groups: Sequence[str] | None) -> list[str]:
    """The explicit order when given (groups absent from the data kept for colours), else sorted."""
    present = [str(v) for v in pd.unique(values) if str(v) != OVERALL]
    return list(groups) if groups is not None else natural_sorted(present)


def _percent(value: float) -> str:
    """A probability as a short percentage label."""
    return f"{100 * value:.3g}%"


# --------------------------------------------------------------------------- classification

@styled
def metric_by_group(by_group: pd.DataFrame, *, metrics: Sequence[str], attributes: str, class_: int = 1,
                    groups: Sequence[str] | None = None) -> Figure:
    """Dot-and-whisker plot of rates per group with their intervals (``ci_low``, ``ci_high``), one panel per metric.

    ``by_group`` is ``ClassificationReport.by_group``. The overall value is the
    dashed vertical line; a NaN value is written "n/a" with no dot.
    """
    rows = by_group[(by_group["attributes"] == attributes) & by_group["metric"].isin(metrics)]
    rows = rows[(rows["class"] == class_).fillna(False) | rows["class"].isna()]
    order = [g for g in _order(rows["group"], groups) if g in set(rows["group"])]
    colours = group_colours(_order(rows["group"], groups))
    overall = by_group[(by_group["attributes"] == OVERALL) & ((by_group["class"] == class_).fillna(False)
                                                               | by_group["class"].isna())]
    fig, axes = new_figure(1.9 * len(metrics) + 1.0, 0.28 * len(order) + 1.0, ncols=len(metrics),
                           sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        values = rows[rows["metric"] == metric].set_index("group")
        _dot_panel(ax, values, order, colours)
        reference = overall.loc[overall["metric"] == metric, "value"]
        if len(reference) and np.isfinite(reference.iloc[0]):
            ax.axvline(reference.iloc[0], color=OVERALL_COLOUR, linestyle="--", linewidth=0.8)
        ax.set(title=METRIC_LABELS.get(metric, metric), xlim=(-0.02, 1.02))
    axes[0, 0].set_yticks(range(len(order)), order)
    axes[0, 0].invert_yaxis()
    fig.suptitle(f"{attributes}, class {class_} (95% CI; dashed: all)", fontsize=STYLE["axes.titlesize"])
    return fig


def _dot_panel(ax, values: pd.DataFrame, order: list[str], colours: Mapping[str, str]) -> None:
    """One metric: a dot with whiskers per group, "n/a" where undefined."""
    for y, group in enumerate(order):
        if group not in values.index or not np.isfinite(values.at[group, "value"]):
            ax.text(0.5, y, "n/a", ha="center", va="center", color=OVERALL_COLOUR, fontsize=7)
            continue
        value, low, high = values.loc[group, ["value", "ci_low", "ci_high"]].astype(float)
        err = np.array([[value - low], [high - value]]) if np.isfinite([low, high]).all() else None
        ax.errorbar(value, y, xerr=err, fmt="o", color=colours[group], markersize=4, capsize=2, linewidth=1)
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)


@styled
def confusion_matrices(confusion: pd.DataFrame, *, attributes: str, class_names: Sequence[str],
                       groups: Sequence[str] | None = None) -> Figure:
    """One row-normalised confusion matrix per group, counts written in the cells.

    ``confusion`` is ``ClassificationReport.confusion``. Colour is the share of
    the true class's rows (0 to 1, the same scale in every panel).
    """
    rows = confusion[confusion["attributes"] == attributes]
    order = [g for g in _order(rows["group"], groups) if g in set(rows["group"])]
    ncols = min(len(order), 4)
    nrows = -(-len(order) // ncols)
    size = 0.35 * len(class_names) + 1.0
    fig, axes = new_figure(size * ncols + 0.4, size * nrows + 0.3, nrows=nrows, ncols=ncols, squeeze=False)
    for ax, group in zip(axes.flat, order):
        counts = rows[rows["group"] == group].pivot_table(index="true", columns="pred", values="count",
                                                          aggfunc="sum").reindex(index=range(len(class_names)),
                                                                                 columns=range(len(class_names)),
                                                                                 fill_value=0)
        _heatmap(ax, counts.to_numpy(dtype=float), class_names)
        ax.set_title(f"{group} (n={int(counts.to_numpy().sum())})")
    for ax in list(axes.flat)[len(order):]:
        ax.remove()
    return fig


def _heatmap(ax, counts: np.ndarray, class_names: Sequence[str]) -> None:
    """Row-normalised heatmap of a confusion matrix with the counts written in."""
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (t, p), count in np.ndenumerate(counts):
        dark = np.isfinite(shares[t, p]) and shares[t, p] > 0.6
        ax.text(p, t, f"{int(count)}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true")


@styled
def reliability(calibration: pd.DataFrame, ece: pd.DataFrame, *, attributes: str,
                groups: Sequence[str] | None = None) -> Figure:
    """Reliability curves per group (top) and images per confidence bin (bottom).

    The legend gives each group's expected calibration error with its interval.
    """
    rows = calibration[calibration["attributes"] == attributes]
    errors = ece[ece["attributes"] == attributes].set_index("group")
    order = [g for g in _order(rows["group"], groups) if g in set(rows["group"])]
    colours = group_colours(_order(rows["group"], groups))
    fig, (ax, ax_n) = new_figure(4.2, 3.6, nrows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color=OVERALL_COLOUR, linestyle=":", linewidth=0.8, label="perfect calibration")
    width = 1.0 / max(len(order), 1)
    for k, group in enumerate(order):
        curve = rows[rows["group"] == group]
        ax.plot(curve["mean_confidence"], curve["accuracy"], "o-", color=colours[group], markersize=3,
                linewidth=1, label=_ece_label(group, errors))
        ax_n.bar(curve["bin_low"] + (k + 0.5) * width * (curve["bin_high"] - curve["bin_low"]), curve["n"],
                 width * (curve["bin_high"] - curve["bin_low"]), color=colours[group])
    ax.set(ylabel="accuracy in bin", xlim=(0, 1), ylim=(0, 1), title=f"Calibration by {attributes}")
    ax_n.set(xlabel="confidence of the predicted class", ylabel="images")
    ax.legend(frameon=False, loc="upper left", fontsize=6)
    return fig


def _ece_label(group: str, errors: pd.DataFrame) -> str:
    """``group: ECE 0.031 [0.020, 0.052]`` (or n/a)."""
    if group not in errors.index or not np.isfinite(errors.at[group, "ece"]):
        return f"{group}: ECE n/a"
    row = errors.loc[group]
    return f"{group}: ECE {row['ece']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


# --------------------------------------------------------------------------- verification

def _curve_groups(table: pd.DataFrame, groups: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """Subgroups to draw (overall last) and their colours."""
    order = _order(table["subgroup"], groups)
    colours = group_colours(order) | {OVERALL: OVERALL_COLOUR}
    present = set(table["subgroup"].astype(str))
    return [g for g in [*order, OVERALL] if g in present], colours


def _line_style(subgroup: str) -> str:
    """Dashed for the overall curve."""
    return "--" if subgroup == OVERALL else "-"


@styled
def roc_curves(roc: pd.DataFrame, *, log_fpr: bool = True, groups: Sequence[str] | None = None) -> Figure:
    """ROC per subgroup (overall dashed), FPR on a log axis by default."""
    order, colours = _curve_groups(roc, groups)
    fig, ax = new_figure(5.4, 3.2)
    for subgroup in order:
        curve = roc[roc["subgroup"] == subgroup]
        if log_fpr:
            curve = curve[curve["fpr"] > 0]
        ax.plot(curve["fpr"], curve["tpr"], _line_style(subgroup), color=colours[subgroup], linewidth=1,
                label=subgroup)
    if log_fpr:
        ax.set_xscale("log")
    ax.set(xlabel="false accept rate (FPR)", ylabel="true accept rate (TAR)", ylim=(0, 1.01))
    ax.grid(linewidth=0.3, alpha=0.5)
    _outside_legend(fig, ax)
    return fig


def _outside_legend(fig: Figure, ax) -> None:
    """A legend to the right of the axes, only when something is labelled (none for empty input)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, frameon=False, fontsize=6, loc="outside right center")


@styled
def det_curves(det: pd.DataFrame, *, groups: Sequence[str] | None = None) -> Figure:
    """DET curves on normal-deviate axes (``norm.ppf`` of FPR and FNR), ticks in percent.

    Points with a rate of exactly 0 or 1 (infinitely far on these axes) are left out.
    """
    order, colours = _curve_groups(det, groups)
    fig, ax = new_figure(5.4, 3.4)
    for subgroup in order:
        curve = det[det["subgroup"] == subgroup]
        inside = curve[(curve["fpr"] > 0) & (curve["fpr"] < 1) & (curve["fnr"] > 0) & (curve["fnr"] < 1)]
        ax.plot(norm.ppf(inside["fpr"]), norm.ppf(inside["fnr"]), _line_style(subgroup),
                color=colours[subgroup], linewidth=1, label=subgroup)
    ticks = norm.ppf(_DET_TICKS)
    labels = [_percent(t) for t in _DET_TICKS]
    ax.set_xticks(ticks, labels, rotation=45)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="false accept rate", ylabel="false reject rate", xlim=(ticks[0], ticks[-1]),
           ylim=(ticks[0], ticks[-1]))
    ax.grid(linewidth=0.3, alpha=0.5)
    _outside_legend(fig, ax)
    return fig


@styled
def score_violins(scores: pd.DataFrame, *, thresholds: dict[str, float] | None = None,
                  groups: Sequence[str] | None = None) -> Figure:
    """Genuine (solid) and imposter (pale, hatched) score distributions per subgroup.

    ``thresholds`` maps a name to a threshold: a subgroup's name draws a short
    line over that subgroup, any other name (e.g. ``"global, FAR 1e-3"``) a
    line across the plot.
    """
    order = [g for g in _order(scores["subgroup"], groups) if g in set(scores["subgroup"].astype(str))]
    colours = group_colours(_order(scores["subgroup"], groups))
    fig, ax = new_figure(max(3.0, 0.7 * len(order) + 1.5), 3.0)
    for x, subgroup in enumerate(order):
        for label, offset, alpha in ((1, -0.2, 0.8), (0, 0.2, 0.3)):
            values = scores.loc[(scores["subgroup"] == subgroup) & (scores["label"] == label), "score"]
            _violin(ax, values.to_numpy(dtype=float), x + offset, colours[subgroup], alpha, hatch=label == 0)
    _threshold_lines(ax, thresholds or {}, order)
    ax.set_xticks(range(len(order)), order)
    ax.set(ylabel="similarity score", xlim=(-0.6, len(order) - 0.4))
    handles = [Patch(facecolor="#888888", alpha=0.8, label="genuine"),
               Patch(facecolor="#888888", alpha=0.3, hatch="///", label="imposter")]
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    ax.legend(handles=[*handles, *lines], frameon=False, fontsize=6, loc="upper right")
    return fig


def _violin(ax, values: np.ndarray, x: float, colour: str, alpha: float, *, hatch: bool) -> None:
    """One violin, or a dot when the values cannot form a density (fewer than two distinct)."""
    if values.size == 0:
        return
    if np.unique(values).size < 2:
        ax.plot([x], [values[0]], "o", color=colour, alpha=max(alpha, 0.5), markersize=3)
        return
    body = ax.violinplot(values, positions=[x], widths=0.38, showextrema=False, showmedians=True)
    for patch in body["bodies"]:
        patch.set(facecolor=colour, edgecolor=colour, alpha=alpha, hatch="///" if hatch else None)
    body["cmedians"].set(color=colour, linewidth=1)


def _threshold_lines(ax, thresholds: Mapping[str, float], order: list[str]) -> None:
    """Subgroup thresholds as short lines over the subgroup, others across the plot."""
    styles = iter(("--", ":", "-.", (0, (5, 1, 1, 1))))
    for name, value in thresholds.items():
        if not np.isfinite(value):
            continue
        if name in order:
            x = order.index(name)
            ax.plot([x - 0.45, x + 0.45], [value, value], color="black", linewidth=1.2, label="_subgroup")
        else:
            ax.axhline(value, color="black", linewidth=0.8, linestyle=next(styles, "--"), label=name)


@styled
def fpr_inflation(fpr_at_global: pd.DataFrame, *, groups: Sequence[str] | None = None) -> Figure:
    """Actual / intended FPR per subgroup at each intended FAR with the global threshold.

    1 (solid line) means the subgroup gets the FPR the threshold was chosen for;
    Robinson et al. 2020 report up to 2 for some BFW subgroups. "n/a" marks
    FARs the data cannot resolve. The overall row is left out.
    """
    table = fpr_at_global[fpr_at_global["subgroup"] != OVERALL]
    order = [g for g in _order(table["subgroup"], groups) if g in set(table["subgroup"].astype(str))]
    colours = group_colours(_order(table["subgroup"], groups))
    fars = sorted(table["intended_far"].unique(), reverse=True)
    fig, ax = new_figure(max(3.5, 0.18 * len(fars) * len(order) + 2.0), 2.8)
    width = 0.8 / max(len(order), 1)
    for k, subgroup in enumerate(order):
        rows = table[table["subgroup"] == subgroup].set_index("intended_far").reindex(fars)
        ratio = rows["actual_fpr"].to_numpy(dtype=float) / np.asarray(fars, dtype=float)
        x = np.arange(len(fars)) + (k - (len(order) - 1) / 2) * width
        ax.bar(x, np.nan_to_num(ratio, nan=0.0), width, color=colours[subgroup], label=subgroup)
        for xi in x[~np.isfinite(ratio)]:
            ax.text(xi, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=5, color=OVERALL_COLOUR)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(fars)), [f"{f:g}" for f in fars])
    ax.set(xlabel="intended FAR (global threshold)", ylabel="actual FPR / intended")
    fig.legend(*ax.get_legend_handles_labels(), frameon=False, fontsize=6, loc="outside right center")
    return fig


@styled
def rank1_heatmap(confusion: pd.DataFrame, *, groups: Sequence[str] | None = None) -> Figure:
    """Where rank-1 errors land: probe subgroup (rows) x nearest wrong neighbour's subgroup (columns).

    ``confusion`` is the output of ``rank1_confusion``; cells show the row share
    and the count; a probe subgroup without errors is written "n/a".
    """
    names = _order(pd.concat([confusion["probe_subgroup"], confusion["neighbour_subgroup"]]), groups)
    cells = confusion.pivot(index="probe_subgroup", columns="neighbour_subgroup", values=["share", "count"])
    share = cells["share"].reindex(index=names, columns=names)
    count = cells["count"].reindex(index=names, columns=names).fillna(0)
    side = 0.45 * len(names) + 1.4
    fig, ax = new_figure(side + 0.4, side)
    ax.imshow(share.to_numpy(dtype=float), cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), value in np.ndenumerate(share.to_numpy(dtype=float)):
        text = "n/a" if not np.isfinite(value) else f"{100 * value:.0f}%\n({int(count.iat[i, j])})"
        dark = np.isfinite(value) and value > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=5, color="white" if dark else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="subgroup of the nearest wrong neighbour", ylabel="probe subgroup",
           title="Rank-1 errors (row shares)")
    return fig
