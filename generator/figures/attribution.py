"""Figures of attribution maps: galleries, evaluation summaries, sanity checks.

Colour conventions, used by every map figure: signed maps on a diverging scale
(RdBu_r) with white at zero, absolute maps on a sequential scale (magma). In a
gallery each map is divided by its own 99th percentile of absolute values so that
methods with different units can sit side by side; the scale is then the same for
every panel of a kind, and the caption says so. Group comparisons use the
analysis figures, which never re-normalise per panel.
"""
from __future__ import annotations

import textwrap

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from generator.figures.export import new_figure
from generator.figures.grid_layout import GridLayout

__all__ = ["evaluation_dots", "gallery", "robust_scale", "sanity_curves"]

SIGNED_CMAP, ABSOLUTE_CMAP = "RdBu_r", "magma"
LABEL_PAD_PT = 4.0  # between a row label and its panel


def robust_scale(maps: np.ndarray, signed: bool, percentile: float = 99.0) -> np.ndarray:
    """Divide each map by its ``percentile`` of |values| and clip to [-1, 1] (or [0, 1])."""
    flat = np.abs(maps.reshape(len(maps), -1))
    scale = np.nanpercentile(flat, percentile, axis=1)
    scale = np.where(scale > 0, scale, 1.0)[:, None, None]
    scaled = maps / scale if signed else np.abs(maps) / scale
    return np.clip(scaled, -1.0 if signed else 0.0, 1.0)


def gallery(images: np.ndarray, maps: Mapping[str, np.ndarray], signed: Mapping[str, bool],
            row_labels: Sequence[str], titles: Mapping[str, str] | None = None,
            invalid: Mapping[str, np.ndarray] | None = None, title_rotation: float = 30) -> Figure:
    """Rows of images, columns of methods; one diverging and one sequential scale for the figure.

    ``invalid[method]`` marks maps (per row) that held NaN or infinite values: they
    are crossed out instead of being drawn as if valid. A map that is zero everywhere
    (Grad-CAM when the gradient-weighted feature maps are negative everywhere, for example) is
    labelled "all zero" instead of being drawn as a blank square. One compact colour bar per
    kind of map (signed, absolute) serves the whole figure. Column titles are turned by
    ``title_rotation`` degrees (0: level and centred, for a slide's few columns).
    """
    methods = list(maps)
    n = len(images)
    # A size that the panels fill: 0.85-inch panels plus rough widths of the texts (5-pt characters are
    # about 3 pt wide); the layout measures the texts themselves and centres what it places.
    label_in = max((len(line) for label in row_labels for line in str(label).splitlines()), default=0) * 3 / 72
    title_in = max((len(str((titles or {}).get(m, m))) for m in methods), default=0) * 3 / 72
    title_h = title_in * np.sin(np.radians(title_rotation)) + 0.15 if title_rotation else 0.3
    fig, axes = new_figure(label_in + 0.92 * (len(methods) + 1) + 1.3, title_h + 0.92 * n + 0.15,
                           nrows=n, ncols=len(methods) + 1, squeeze=False)
    signed_norm, absolute_norm = TwoSlopeNorm(0.0, -1.0, 1.0), Normalize(0.0, 1.0)
    images_shown, column_titles = {}, []
    for col, method in enumerate(methods, start=1):
        is_signed = signed[method]
        scaled = robust_scale(np.nan_to_num(maps[method]), is_signed)
        for row in range(n):
            ax = axes[row, col]
            if invalid is not None and invalid[method][row]:
                ax.text(0.5, 0.5, "invalid\nmap", ha="center", va="center", fontsize=5, color="#B00000")
                ax.set_box_aspect(1)
            elif not np.any(np.nan_to_num(maps[method][row])):
                ax.text(0.5, 0.5, "all zero", ha="center", va="center", fontsize=5, color="#555555",
                        transform=ax.transAxes)
                ax.set_box_aspect(1)
            else:
                images_shown[is_signed] = ax.imshow(scaled[row], cmap=SIGNED_CMAP if is_signed else ABSOLUTE_CMAP,
                                                    norm=signed_norm if is_signed else absolute_norm)
        title = (titles or {}).get(method, method)
        if title_rotation:
            column_titles.append(axes[0, col].set_title(title, fontsize=5, rotation=title_rotation, ha="left",
                                                        loc="left"))
        else:
            column_titles.append(axes[0, col].set_title(textwrap.fill(title, 14), fontsize=5))
    labels = []
    for row in range(n):
        axes[row, 0].imshow(images[row], interpolation="nearest")
        labels.append(axes[row, 0].annotate(row_labels[row], (0, 0.5), xycoords="axes fraction",
                                            xytext=(-LABEL_PAD_PT, 0), textcoords="offset points", fontsize=5,
                                            ha="right", va="center"))
    for ax in axes.ravel():  # frames only: no axis to draw (most of a gallery's drawing time otherwise)
        ax.xaxis.set_visible(False)
        ax.yaxis.set_visible(False)
    bars = []
    for is_signed, mappable in sorted(images_shown.items()):
        label = "signed, scaled by 99th pct of |map|" if is_signed else "absolute, scaled by 99th pct"
        bar = fig.colorbar(mappable, cax=fig.add_axes((0.0, 0.0, 0.01, 0.1)))
        bar.set_label(label, fontsize=5)
        bar.ax.tick_params(labelsize=4, length=1.5)
        bars.append(bar.ax)
    fig.set_layout_engine(GridLayout(axes, bars, labels, column_titles, label_pad_pt=LABEL_PAD_PT))
    return fig


def evaluation_dots(summary: pd.DataFrame, *, metrics: Sequence[str], method_titles: Mapping[str, str],
                    higher_is_better: Mapping[str, bool]) -> Figure:
    """Mean and CI of each metric per method (rows) and model (colours)."""
    methods = list(dict.fromkeys(summary["method"]))
    models = list(dict.fromkeys(summary["model"]))
    fig, axes = new_figure(1.9 * len(metrics) + 1.2, 0.2 * len(methods) + 1.0, ncols=len(metrics),
                           sharey=True, squeeze=False)
    y = np.arange(len(methods))
    for ax, metric in zip(axes[0], metrics):
        for k, model in enumerate(models):
            rows = summary[(summary["metric"] == metric) & (summary["model"] == model)].set_index("method")
            rows = rows.reindex(methods)
            offset = (k - (len(models) - 1) / 2) * 0.25
            ax.errorbar(rows["mean"], y + offset, xerr=[rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]],
                        fmt="o", markersize=2.5, linewidth=0.7, color=f"C{k}", label=model)
        arrow = "higher is better" if higher_is_better[metric] else "lower is better"
        ax.set_title(f"{metric}\n({arrow})", fontsize=7)
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    axes[0, 0].set_yticks(y, [method_titles.get(m, m) for m in methods])
    axes[0, 0].invert_yaxis()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="model", frameon=False, loc="outside right center")
    return fig


def sanity_curves(summary: pd.DataFrame, *, method_titles: Mapping[str, str], threshold: float) -> Figure:
    """Similarity to the original maps as layers are randomised, from the output back to the input."""
    fig, ax = new_figure(6.0, 3.0)
    for k, (method, rows) in enumerate(summary.groupby("method", sort=False)):
        rows = rows.sort_values("step")
        ax.plot(rows["step"], rows["mean"], "o-", markersize=2.5, linewidth=1, color=f"C{k % 8}",
                label=method_titles.get(method, method))
        ax.fill_between(rows["step"], rows["ci_low"], rows["ci_high"], color=f"C{k % 8}", alpha=0.15, linewidth=0)
    layers = summary.drop_duplicates("step").sort_values("step")
    ax.set_xticks(layers["step"], layers["layer"], rotation=45, ha="right")
    ax.axhline(threshold, color="#888888", linestyle=":", linewidth=0.8)
    ax.set(xlabel="randomised up to layer (cumulative, from the output)",
           ylabel="Spearman rank correlation\nwith the original map", ylim=(-0.2, 1.05))
    fig.legend(*ax.get_legend_handles_labels(), frameon=False, loc="outside right center")
    return fig
