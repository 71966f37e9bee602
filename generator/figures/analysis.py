"""Figures of the group-level analysis of attribution maps.

Every figure uses ONE colour scale for all its panels (and accepts ``vmax`` so
several figures can share it): groups and models are compared by colour, so a
panel re-normalised on its own (as FaceX's face prototypes are) would mislead.
Signed maps are drawn on a diverging map with white at zero (``RdBu_r``,
symmetric limits); magnitudes on a sequential, colour-blind-safe map
(``magma`` for maps, ``viridis`` for region scores). Images of attribution
carry the gid ``"attribution"`` so tests and readers can find them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from generator.errors import DataError
from generator.figures.bias import group_colours
from generator.figures.export import STYLE, new_figure, styled
from generator.ordering import natural_sorted

__all__ = ["difference_maps", "face_prototype", "fair_vs_biased", "group_mean_grid", "patch_gallery",
           "region_share_bars"]

SIGNED_CMAP = "RdBu_r"
MAGNITUDE_CMAP = "magma"
SCORE_CMAP = "viridis"
MISSING_COLOUR = "#d9d9d9"
GID = "attribution"
_PANEL_IN = 1.35




def shared_norm(arrays: Sequence[np.ndarray], *, signed: bool, vmax: float | None = None) -> Normalize:
    """One normalisation for all panels: ``[-v, v]`` if signed (white at 0), else ``[0, v]``.

    ``v`` is ``vmax`` when given, else the largest finite ``|value|`` over all
    arrays (1 if there is none).
    """
    if vmax is None:
        finite = [np.abs(a[np.isfinite(a)]) for a in map(np.asarray, arrays)]
        vmax = max((float(f.max()) for f in finite if f.size), default=1.0) or 1.0
    return Normalize(vmin=-vmax if signed else 0.0, vmax=vmax)


def _cmap(name: str):
    return matplotlib.colormaps[name].with_extremes(bad=MISSING_COLOUR)


def _show_map(ax, values: np.ndarray, norm: Normalize, cmap: str, background: np.ndarray | None):
    """A map on ``ax`` (over a faint greyscale face if given), axes hidden; returns the image."""
    if background is not None:
        ax.imshow(_grey(background), cmap="gray", vmin=0.0, vmax=1.0)
    image = ax.imshow(values, cmap=_cmap(cmap), norm=norm, alpha=0.75 if background is not None else 1.0,
                      interpolation="nearest")
    image.set_gid(GID)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def _grey(image: np.ndarray) -> np.ndarray:
    """A face as greyscale in [0, 1] (RGB averaged; 0..255 input rescaled)."""
    array = np.asarray(image, dtype=np.float64)
    array = array.mean(axis=-1) if array.ndim == 3 else array
    return np.clip(array / 255.0 if np.nanmax(array) > 1.0 else array, 0.0, 1.0)


def _grid(n_rows: int, n_cols: int, extra_width: float = 1.2):
    fig, axes = new_figure(_PANEL_IN * n_cols + extra_width, _PANEL_IN * n_rows + 0.5, nrows=n_rows,
                           ncols=n_cols, squeeze=False)
    return fig, axes


@styled
def group_mean_grid(means: Mapping[str, Mapping[str, np.ndarray]], *, row_label: str,
                    background: np.ndarray | None = None, signed: bool = False,
                    n: Mapping[str, Mapping[str, int]] | None = None, vmax: float | None = None,
                    colorbar_label: str = "mean attribution share per pixel", empty_label: str = "no images",
                    groups: Sequence[str] | None = None) -> Figure:
    """Mean maps in a grid: one row per method (or model), one column per group, one colour scale.

    Parameters
    ----------
    means : mapping
        ``means[row][group]`` = ``(H, W)`` mean map; columns follow the first
        row's group order, a missing group shows an empty panel.
    row_label : str
        What the rows are ("method", "model"), written on the left.
    background : np.ndarray, optional
        Aligned mean face (``(H, W)`` or ``(H, W, 3)``) drawn faintly under every map.
    signed : bool
        Diverging ``RdBu_r`` on ``[-v, v]``; otherwise ``magma`` on ``[0, v]``.
    n : mapping, optional
        ``n[row][group]`` images behind each mean, written in the titles.
    vmax : float, optional
        Upper limit shared with other figures; default the largest ``|value|``.
    colorbar_label : str
        Label of the one colour bar.
    empty_label : str
        Written in a panel without a mean (its group has nothing to average).
    groups : sequence of str, optional
        The columns, in this order (default: the groups of the rows in order of appearance).
    """
    rows = list(means)
    cols = list(groups) if groups is not None else list(dict.fromkeys(g for r in rows for g in means[r]))
    if not rows or not cols:
        raise DataError("group_mean_grid needs at least one row and one group of maps")
    norm = shared_norm([m for r in rows for m in means[r].values()], signed=signed, vmax=vmax)
    fig, axes = _grid(len(rows), len(cols))
    image = None
    for i, row in enumerate(rows):
        for j, group in enumerate(cols):
            ax = axes[i, j]
            count = (n or {}).get(row, {}).get(group)
            ax.set_title(group if count is None else f"{group} (n = {count})")
            if group in means[row]:
                image = _show_map(ax, means[row][group], norm, SIGNED_CMAP if signed else MAGNITUDE_CMAP,
                                  background)
            else:  # an empty panel keeps its frame off but its axis, so that the row keeps its label
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_box_aspect(1)  # square like the maps beside it
                for spine in ax.spines.values():
                    spine.set_visible(False)
                ax.text(0.5, 0.5, empty_label, ha="center", va="center", transform=ax.transAxes, color="#555555")
        axes[i, 0].set_ylabel(row)
    fig.supylabel(row_label)
    fig.colorbar(image, ax=axes, shrink=0.8, label=colorbar_label)
    return fig


@styled
def difference_maps(diffs: Mapping[str, np.ndarray], significant: Mapping[str, np.ndarray] | None = None, *,
                    background: np.ndarray | None = None, vmax: float | None = None, ncols: int = 4,
                    colorbar_label: str = "difference of mean share") -> Figure:
    """Difference maps on one symmetric diverging scale, significant pixels outlined in black.

    Parameters
    ----------
    diffs : mapping
        Panel title (e.g. ``"MST 8-10 - MST 1-3"``) -> ``(H, W)`` difference.
    significant : mapping, optional
        Same keys -> boolean ``(H, W)`` (e.g. ``PixelTestResult.significant``),
        contoured.
    background, vmax, colorbar_label
        As in :func:`group_mean_grid`.
    ncols : int
        Panels per row.
    """
    names = list(diffs)
    if not names:
        raise DataError("difference_maps needs at least one difference map")
    norm = shared_norm(list(diffs.values()), signed=True, vmax=vmax)
    cols = min(ncols, len(names))
    fig, axes = _grid(-(-len(names) // cols), cols)
    image = None
    for ax, name in zip(axes.flat, names):
        image = _show_map(ax, diffs[name], norm, SIGNED_CMAP, background)
        mask = None if significant is None else np.asarray(significant.get(name, False))
        if mask is not None and mask.ndim == 2 and mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors="black", linewidths=0.8)
        ax.set_title(name)
    for ax in list(axes.flat)[len(names):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.8, label=colorbar_label)
    return fig


def _labels(table: pd.DataFrame, by: Sequence[str]) -> pd.Series:
    return table[list(by)].astype(str).agg(", ".join, axis=1)


@styled
def region_share_bars(summary: pd.DataFrame, *, by: str | Sequence[str], region_order: Sequence[str],
                      groups: Sequence[str] | None = None, ylabel: str = "share of attribution") -> Figure:
    """Grouped bars of the mean share per region, one bar per group, with 95 % bootstrap intervals.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`generator.analysis.regions.region_share_summary`
        (``*by, region, n, share, ci_low, ci_high``), filtered to one model
        and method if it holds several.
    by : str or sequence of str
        Columns naming a bar's group (joined with ", ").
    region_order : sequence of str
        Regions on the x axis, in this order.
    groups : sequence of str, optional
        Group order (and colours, as in :mod:`generator.figures.bias`).
    """
    by = [by] if isinstance(by, str) else list(by)
    table = summary[summary["region"].isin(region_order)].assign(_group=lambda t: _labels(t, by))
    order = list(groups) if groups is not None else natural_sorted(table["_group"].unique())
    colours = group_colours(order)
    width = 0.8 / max(len(order), 1)
    fig, ax = new_figure(min(7.0, max(4.0, 0.3 * len(region_order) * max(1, len(order)) / 2 + 1.5)), 2.8)
    for k, group in enumerate(order):
        rows = table[table["_group"] == group].set_index("region").reindex(region_order)
        x = np.arange(len(region_order)) + (k - (len(order) - 1) / 2) * width
        error = np.vstack([rows["share"] - rows["ci_low"], rows["ci_high"] - rows["share"]]).clip(0)
        ax.bar(x, rows["share"], width, yerr=error, color=colours[group], label=group, capsize=1.5,
               error_kw={"linewidth": 0.7})
    ax.set_xticks(np.arange(len(region_order)), region_order, rotation=30, ha="right")
    ax.set(ylabel=ylabel, ylim=(0, None))
    ax.legend(title=", ".join(by), frameon=False)
    ax.grid(axis="y", linewidth=0.3, alpha=0.5)
    return fig


def _prototype_image(template: np.ndarray, scores: Mapping[str, float], region_names: Sequence[str],
                     skip: Sequence[str]) -> np.ndarray:
    """The template mask painted with each region's score; NaN for skipped or unscored regions."""
    painted = np.full(template.shape, np.nan)
    for k, name in enumerate(region_names):
        if name not in skip:
            painted[template == k] = scores.get(name, np.nan)
    return painted


@styled
def face_prototype(scores: pd.DataFrame, *, template_mask: np.ndarray, region_names: Sequence[str],
                   groups: Sequence[str], group_col: str | None = None, vmin: float = 0.0,
                   vmax: float | None = None, skip: Sequence[str] = ("background",),
                   colorbar_label: str = "FaceX region score") -> Figure:
    """FaceX-style face prototype per group, coloured by region score on ONE shared scale.

    Unlike MAI-BIAS FaceX (red/blue, re-normalised per plot), all panels share
    ``[vmin, vmax]`` on the sequential, colour-blind-safe ``viridis``, so
    colours compare across groups (pass the same ``vmax`` to several figures
    to compare across them). Regions without a score (absent in a group) and
    ``skip`` regions are light grey; region outlines are drawn thin.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`generator.analysis.regions.facex_region_scores`
        (``group_col, region, score, ...``).
    template_mask : np.ndarray
        ``(H, W)`` region ids of the prototype face (e.g.
        :func:`generator.analysis.alignment.majority_mask`).
    region_names : sequence of str
        Name of each region id.
    groups : sequence of str
        Values of ``group_col``, one panel each, in this order.
    group_col : str, optional
        Column of the groups; default the first column other than
        ``region``, ``score`` and ``n_images``.
    vmin, vmax : float
        Shared colour limits; ``vmax`` defaults to the largest score shown.
    skip : sequence of str
        Regions left uncoloured.
    """
    column = group_col or next(c for c in scores.columns if c not in ("region", "score", "n_images"))
    template = np.asarray(template_mask)
    images = [_prototype_image(template, scores[scores[column].astype(str) == str(g)]
                               .set_index("region")["score"].to_dict(), region_names, skip) for g in groups]
    finite = [i[np.isfinite(i)] for i in images]
    top = vmax if vmax is not None else max((float(f.max()) for f in finite if f.size), default=1.0) or 1.0
    norm = Normalize(vmin=vmin, vmax=top)
    fig, axes = _grid(1, len(groups))
    image = None
    for ax, group, painted in zip(axes[0], groups, images):
        image = ax.imshow(painted, cmap=_cmap(SCORE_CMAP), norm=norm, interpolation="nearest")
        image.set_gid(GID)
        ax.contour(template, levels=np.arange(len(region_names)) + 0.5, colors="white", linewidths=0.4)
        ax.set(title=str(group), xticks=[], yticks=[])
    fig.colorbar(image, ax=axes, shrink=0.8, label=colorbar_label)
    return fig


def _as_rgb01(crop: np.ndarray) -> np.ndarray:
    array = np.asarray(crop, dtype=np.float64)
    return np.clip(array / 255.0 if array.size and array.max() > 1.0 else array, 0.0, 1.0)


@styled
def patch_gallery(crops: Sequence[np.ndarray], table: pd.DataFrame, *, ncols: int = 10,
                  label_cols: Sequence[str] = ("region",)) -> Figure:
    """Crops of the high-impact patches in a grid, each titled with its label columns and score.

    Parameters
    ----------
    crops : sequence of np.ndarray
        From :func:`generator.analysis.patches.crop_patches`, in the table's order.
    table : pandas.DataFrame
        The patch table (``score`` and ``label_cols`` columns).
    ncols : int
        Crops per row.
    """
    if len(crops) != len(table) or len(crops) == 0:
        raise DataError(f"patch_gallery needs one crop per table row (got {len(crops)} crops, {len(table)} rows)")
    cols = min(ncols, len(crops))
    n_rows = -(-len(crops) // cols)
    fig, axes = new_figure(0.85 * cols + 0.3, 0.95 * n_rows + 0.3, nrows=n_rows, ncols=cols, squeeze=False)
    for ax, crop, row in zip(axes.flat, crops, table.to_dict("records")):
        grey = np.asarray(crop).ndim == 2
        ax.imshow(_as_rgb01(crop), cmap="gray" if grey else None, vmin=0, vmax=1, interpolation="nearest")
        words = ", ".join(str(row[c]) for c in label_cols)
        ax.set_title(f"{words}\n{row['score']:.3g}", fontsize=6)
        ax.set_axis_off()
    for ax in list(axes.flat)[len(crops):]:
        ax.set_axis_off()
    return fig


def _overall(comparison: pd.DataFrame, method_col: str) -> pd.DataFrame:
    """Rows of the overall stratum (every group column equal to "all")."""
    standard = {method_col, "region", "n", "share_a", "share_b", "difference", "ci_low", "ci_high",
                "p_value", "p_holm", "detected", "sentence"}
    extra = [c for c in comparison.columns if c not in standard]
    keep = (comparison[extra] == "all").all(axis=1) if extra else np.ones(len(comparison), bool)
    return comparison[keep].reset_index(drop=True)


@styled
def fair_vs_biased(comparison: pd.DataFrame, *, method_col: str = "method", model_a: str = "fair",
                   model_b: str = "biased", method_labels: Mapping[str, str] | None = None) -> Figure:
    """Per method: the two models' mean shares on the region, and their paired difference with CI.

    Left: dots for ``share_a`` and ``share_b`` joined by a line; right: the
    difference ``b - a`` (percentage points) with its 95 % bootstrap interval,
    ``*`` where detected (Holm-corrected p < 0.05). Uses the overall rows of
    :func:`generator.analysis.compare.compare_models_on_region`.
    """
    rows = _overall(comparison, method_col)
    if rows.empty:
        raise DataError("fair_vs_biased needs the overall rows of compare_models_on_region")
    labels = [str((method_labels or {}).get(m, m)) for m in rows[method_col]]
    y = np.arange(len(rows))
    colour_a, colour_b = STYLE["axes.prop_cycle"].by_key()["color"][:2]
    fig, (left, right) = new_figure(6.0, 0.32 * len(rows) + 1.1, ncols=2, sharey=True)
    left.hlines(y, 100 * rows["share_a"], 100 * rows["share_b"], color="#999999", linewidth=0.8)
    left.plot(100 * rows["share_a"], y, "o", color=colour_a, label=model_a, markersize=4)
    left.plot(100 * rows["share_b"], y, "s", color=colour_b, label=model_b, markersize=4)
    left.set(xlabel=f"attribution on {rows['region'].iloc[0]} (%)", xlim=(0, None))
    left.set_yticks(y, labels)
    left.set_ylim(len(rows) - 0.5, -0.5)
    fig.legend(loc="outside upper center", ncols=2, frameon=False)
    error = np.vstack([rows["difference"] - rows["ci_low"], rows["ci_high"] - rows["difference"]]).clip(0) * 100
    right.errorbar(100 * rows["difference"], y, xerr=error, fmt="o", color="black", markersize=3, capsize=2)
    right.axvline(0.0, color="#999999", linewidth=0.8, linestyle="--")
    for k, row in rows.iterrows():
        if row["detected"]:
            right.annotate("*", (100 * row["ci_high"], k), xytext=(3, -3), textcoords="offset points")
    right.set(xlabel=f"{model_b} - {model_a} (points, 95 % CI; * Holm p < 0.05)")
    for ax in (left, right):
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    return fig


@styled
def replicate_detection(tests: pd.DataFrame, *, method_labels: Mapping[str, str] | None = None,
                        order: Sequence[str] | None = None) -> Figure:
    """Per method, one marker per training draw: the paired difference with its CI, filled where detected.

    ``tests`` is the replicate table of :mod:`generator.pipeline.results_replicates` (columns
    ``replicate, method, difference, ci_low, ci_high, detected``).
    """
    if tests.empty:
        raise DataError("replicate_detection needs at least one tested method")
    methods = [m for m in (order or sorted(tests["method"].unique())) if m in set(tests["method"])]
    replicates = sorted(tests["replicate"].unique())
    colours = STYLE["axes.prop_cycle"].by_key()["color"]
    fig, ax = new_figure(6.0, 0.3 * len(methods) + 1.2)
    width = 0.6 / max(len(replicates), 1)
    for k, replicate in enumerate(replicates):
        rows = tests[tests["replicate"] == replicate].set_index("method").reindex(methods)
        y = np.arange(len(methods)) - 0.3 + width * (k + 0.5)
        error = np.vstack([rows["difference"] - rows["ci_low"], rows["ci_high"] - rows["difference"]]).clip(0) * 100
        colour = colours[k % len(colours)]
        ax.errorbar(100 * rows["difference"], y, xerr=error, fmt="none", ecolor=colour, elinewidth=0.8, capsize=1.5)
        detected = rows["detected"].fillna(False).astype(bool).to_numpy()
        ax.plot(100 * rows["difference"][detected], y[detected], "o", color=colour, markersize=4,
                label=f"draw {replicate}")
        ax.plot(100 * rows["difference"][~detected], y[~detected], "o", markerfacecolor="white", color=colour,
                markersize=4, label="_nolegend_")
    ax.axvline(0.0, color="#999999", linewidth=0.8, linestyle="--")
    ax.set_yticks(np.arange(len(methods)), [str((method_labels or {}).get(m, m)) for m in methods])
    ax.set_ylim(len(methods) - 0.5, -0.5)
    ax.set(xlabel="biased - fair: attribution on the corner mark (points, 95 % CI)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    fig.legend(loc="outside upper center", ncols=len(replicates), frameon=False,
               title="filled: detected (Holm p < 0.05); open: not detected", title_fontsize="small")
    return fig
