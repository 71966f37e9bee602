"""Figures about the models: training curves and accuracy by group."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from generator.figures.export import new_figure

__all__ = ["accuracy_by_group", "training_curves"]


def training_curves(histories: Mapping[str, pd.DataFrame]) -> Figure:
    """Loss and accuracy per epoch, one line style per data set, one colour per model."""
    fig, (ax_loss, ax_acc) = new_figure(6.5, 2.4, ncols=2)
    for index, (name, history) in enumerate(histories.items()):
        colour = f"C{index}"
        for split, style in (("train", "-"), ("eval", "--")):
            if history[f"{split}_loss"].notna().any():
                ax_loss.plot(history["epoch"], history[f"{split}_loss"], style, color=colour, label=f"{name} ({split})")
                ax_acc.plot(history["epoch"], history[f"{split}_accuracy"], style, color=colour)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0.4, 1.0))
    ax_loss.legend(frameon=False)
    return fig


def accuracy_by_group(frame: pd.DataFrame, *, group: str, chance: float = 0.5) -> Figure:
    """Grouped bars of accuracy per group and model with their confidence intervals.

    ``frame`` has columns ``model``, ``group``, ``accuracy``, ``ci_low``, ``ci_high``;
    a dotted line marks ``chance`` (one over the number of classes).
    """
    groups = list(dict.fromkeys(frame[group]))
    models = list(dict.fromkeys(frame["model"]))
    width = 0.8 / len(models)
    fig, ax = new_figure(6.5, 2.6)
    x = np.arange(len(groups))
    for index, model in enumerate(models):
        rows = frame[frame["model"] == model].set_index(group).reindex(groups)
        err = np.vstack([rows["accuracy"] - rows["ci_low"], rows["ci_high"] - rows["accuracy"]])
        ax.bar(x + (index - (len(models) - 1) / 2) * width, rows["accuracy"], width,
               yerr=err, capsize=2, label=model, error_kw={"linewidth": 0.8})
    ax.axhline(chance, color="#888888", linewidth=0.6, linestyle=":")
    ax.set_xticks(x, groups, rotation=30 if max(len(str(g)) for g in groups) > 10 else 0)
    ax.set(ylabel="accuracy (95% CI)", ylim=(0.0, 1.0))
    fig.legend(*ax.get_legend_handles_labels(), title="model", frameon=False, loc="outside right center")
    return fig
