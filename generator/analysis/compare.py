"""Fair vs biased model: does an explanation method reveal the planted shortcut?

Both models are explained on the *same* images, so the share of attribution on
a region (e.g. the corner cue) is compared image by image: a paired design
that removes the variation between images. A method "detects" the shortcut
when the biased model puts significantly more of its attribution on the
region than the fair one, after a Holm 1979 correction over the methods
compared (each method is one more chance of a false alarm). This is the test
the FairFace capstone's side-by-side pictures of four faces could not make.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from generator.analysis.stats import holm, permutation_test_scalar
from generator.errors import DataError

__all__ = ["COMPARE_COLUMNS", "compare_models_on_region"]

OVERALL = "all"
COMPARE_COLUMNS: tuple[str, ...] = ("region", "n", "share_a", "share_b", "difference", "ci_low", "ci_high",
                                    "p_value", "p_holm", "detected", "sentence")
_LEVEL = 0.05


def _region_mass(shares: pd.DataFrame, regions: list[str], keys: list[str]) -> pd.Series:
    """Share on the union of ``regions`` per ``keys`` (NaN when every part is NaN)."""
    absent = sorted(set(regions) - set(shares["region"]))
    if absent:
        raise DataError(f"region(s) {absent} not in the shares table; it has {sorted(shares['region'].unique())}")
    chosen = shares[shares["region"].isin(regions)]
    return chosen.groupby(keys, sort=True, dropna=False)["share"].sum(min_count=1)


def _paired(shares: pd.DataFrame, regions: list[str], *, model_col: str, model_a: str, model_b: str,
            method_col: str, image_col: str, by: list[str]) -> pd.DataFrame:
    """One row per method x image: ``*by, share_a, share_b`` (inner join on the image)."""
    models = set(shares[model_col])
    for model in (model_a, model_b):
        if model not in models:
            raise DataError(f"model {model!r} not in column {model_col!r}; models: {sorted(map(str, models))}")
    mass = _region_mass(shares[shares[model_col].isin([model_a, model_b])], regions,
                        [method_col, image_col, *by, model_col])
    wide = mass.unstack(model_col).rename(columns={model_a: "share_a", model_b: "share_b"})
    return wide.reset_index().dropna(subset=["share_a", "share_b"])


def _p_text(p: float) -> str:
    if p >= 0.01:
        return f"{p:.2f}"
    if p >= 0.001:
        return f"{p:.3f}"
    return np.format_float_positional(p, precision=1, fractional=False, trim="-")


def _sentence(row: Mapping, *, method: str, group: str, region: str, model_a: str, model_b: str) -> str:
    """The result in plain words, for pages and slides."""
    who = f"{method}, {group}" if group else method
    if row["n"] == 0:
        return f"{who}: no image has maps of both models, so nothing can be said."
    numbers = (f"the {model_b} model puts {100 * row['share_b']:.1f} % of its attribution on the {region} "
               f"against {100 * row['share_a']:.1f} % for the {model_a} model (difference "
               f"{100 * row['difference']:.1f} points, 95 % CI {100 * row['ci_low']:.1f} to "
               f"{100 * row['ci_high']:.1f}; paired permutation p = {_p_text(row['p_holm'])}, Holm-corrected, "
               f"n = {row['n']} images)")
    if row["detected"]:
        return f"{who}: {numbers}."
    return f"{who}: does not detect the shift: {numbers}."


def _test_row(pairs: pd.DataFrame, n_permutations: int, seed: int) -> dict:
    if len(pairs) == 0:
        return {"n": 0, **dict.fromkeys(("share_a", "share_b", "difference", "ci_low", "ci_high", "p_value"),
                                        np.nan)}
    result = permutation_test_scalar(pairs["share_b"].to_numpy(), pairs["share_a"].to_numpy(), paired=True,
                                     alternative="greater", n_permutations=n_permutations, seed=seed)
    return {"n": len(pairs), "share_a": float(pairs["share_a"].mean()), "share_b": float(pairs["share_b"].mean()),
            "difference": result.difference, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "p_value": result.p_value}


def _strata(pairs: pd.DataFrame, by: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """The overall stratum, then one per combination of ``by``."""
    out = [((OVERALL,) * len(by), pairs)]
    if by:
        out += [(key if isinstance(key, tuple) else (key,), rows)
                for key, rows in pairs.groupby(by, sort=True, dropna=False)]
    return out


def compare_models_on_region(shares: pd.DataFrame, *, region: str | Sequence[str], model_a: str, model_b: str,
                             by: Sequence[str] = (), method_col: str = "method", model_col: str = "model",
                             image_col: str = "image_id", n_permutations: int = 10000, seed: int = 0,
                             method_labels: Mapping[str, str] | None = None,
                             region_label: str | None = None) -> pd.DataFrame:
    """Paired comparison of two models' attribution share on a region, per explanation method.

    For each method (and each group of ``by``, plus ``"all"``) the images
    explained under both models are paired by ``image_col``; the share on the
    region (summed over several regions if a list is given) is compared with
    a paired sign-flip permutation test, one-sided: does ``model_b`` (the
    biased model) put *more* mass on the region? Within each group the
    p-values of the methods are Holm-corrected.

    Parameters
    ----------
    shares : pandas.DataFrame
        Long table of :func:`generator.analysis.regions.region_share_table`
        with columns ``image_col, model_col, method_col, region, share`` and
        the ``by`` columns.
    region : str or sequence of str
        The region(s) whose summed share is compared (e.g. ``"cue"``).
    model_a, model_b : str
        The reference (fair) model and the one suspected of the shortcut.
    by : sequence of str
        Group columns (e.g. ``["skin_tone"]``); results per group and overall.
    method_col, model_col, image_col : str
        Column names.
    n_permutations, seed : int
        Sign flips and seed of every test (each test restarts from the seed).
    method_labels : mapping, optional
        Display name per method for the sentence (default: the method value).
    region_label : str, optional
        Words for the region in the sentence (default: its name).

    Returns
    -------
    pandas.DataFrame
        Columns ``method_col, *by, region, n, share_a, share_b, difference
        (b - a), ci_low, ci_high, p_value, p_holm, detected, sentence``;
        ``detected`` is ``p_holm < 0.05 and difference > 0``.
    """
    regions = [region] if isinstance(region, str) else list(region)
    by = list(by)
    missing = [c for c in (image_col, model_col, method_col, "region", "share", *by) if c not in shares.columns]
    if missing:
        raise DataError(f"shares table lacks column(s) {missing}; it has {list(shares.columns)}")
    pairs = _paired(shares, regions, model_col=model_col, model_a=model_a, model_b=model_b,
                    method_col=method_col, image_col=image_col, by=by)
    rows = []
    for method in sorted(shares[method_col].unique()):
        for key, stratum in _strata(pairs[pairs[method_col] == method], by):
            rows.append({method_col: method, **dict(zip(by, key)), "region": " + ".join(regions),
                         **_test_row(stratum, n_permutations, seed)})
    table = pd.DataFrame(rows)
    return _finish(table, method_col=method_col, by=by, model_a=model_a, model_b=model_b,
                   labels=method_labels or {}, region_label=region_label or " + ".join(regions))


def _finish(table: pd.DataFrame, *, method_col: str, by: list[str], model_a: str, model_b: str,
            labels: Mapping[str, str], region_label: str) -> pd.DataFrame:
    """Holm over methods within each group, the detection flag and the sentences."""
    table["p_holm"] = np.nan
    for _, rows in table.groupby(by, sort=False) if by else [(None, table)]:
        table.loc[rows.index, "p_holm"] = holm(rows["p_value"].to_numpy())
    table["detected"] = (table["p_holm"] < _LEVEL) & (table["difference"] > 0)
    table["sentence"] = [
        _sentence(row, method=str(labels.get(row[method_col], row[method_col])),
                  group=", ".join(str(row[c]) for c in by if row[c] != OVERALL), region=region_label,
                  model_a=model_a, model_b=model_b)
        for row in table.to_dict("records")]
    return table[[method_col, *by, *COMPARE_COLUMNS]]
