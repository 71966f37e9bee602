"""Fairness of a classifier by group: rates, disparities, confusion and calibration.

One call, :func:`classification_report`, audits a table of predictions (one row
per image) for every protected attribute and, optionally, every intersection
of attributes (Buolamwini & Gebru 2018, "Gender Shades", showed that the worst
errors hide in intersections such as darker-skinned women). For each group it
reports the rates of Hardt et al. 2016 ("Equality of Opportunity in Supervised
Learning") one class against the rest, the gaps between groups (Barocas, Hardt
& Narayanan, "Fairness and Machine Learning", ch. 3), a confusion matrix, and a
reliability curve with the expected calibration error (Guo et al. 2017, "On
Calibration of Modern Neural Networks").

The pitfall this module avoids
------------------------------
A course tutorial computed "demographic parity" as the rate of predicting class
index 1 in every group. For a multi-class task that is one class's selection
rate and says nothing about the others; its "TPR" was the accuracy again.
Demographic parity compares the selection rates ``P(pred = k | group)`` across
groups *for every class k*; equal opportunity compares ``P(pred = k | y = k,
group)``; equalized odds compares both TPR and FPR. Here every rate is computed
one class against the rest, per class, and the disparity tables have one row
per class.

Undefined rates are NaN, never 0
--------------------------------
A rate whose denominator is empty in a group (TPR without positives, precision
without predicted positives, FPR without negatives) is NaN with a ``note`` that
says why.

Why the rates are computed here from confusion counts
-----------------------------------------------------
fairlearn's ``MetricFrame`` groups the rows and scikit-learn's
``confusion_matrix`` (labels fixed to ``0..K-1``) counts each group; every rate
is then a ratio of those counts (:func:`_count_rates`). The per-rate library
functions are not called in the report for three reasons, each measured:
fairlearn's ``true_positive_rate``/``false_positive_rate``/``false_negative_rate``
return 0, not NaN, for an empty denominator (scikit-learn's normalised confusion
matrix fills 0/0 with 0); ``MetricFrame`` converts its inputs element by element
on every metric call, so one call per rate, class and attribute set took 34 s
for 10,000 rows, 7 classes and 3 attributes (1 s this way); and the same formulas
then serve the bootstrap, so a value and its interval can never disagree. The
tests check every rate against boolean masks, against scikit-learn's
``recall_score``/``precision_score``/``f1_score`` with ``zero_division=np.nan``
and fairlearn's rate functions where they are defined, and every disparity
against fairlearn's ``demographic_parity_*``, ``equal_opportunity_*`` and
``equalized_odds_*``.

Confidence intervals
--------------------
Every rate that is a proportion (base rate, accuracy, TPR, FPR, FNR, precision,
selection rate) gets the Wilson score interval of its group's counts
(:mod:`generator.bias.intervals`): a percentile bootstrap collapses at 0 and 1
(192 of 192 gives ``[1, 1]``). F1 and ECE have no closed form and keep a
percentile bootstrap over the very resamples ``MetricFrame(n_boot=...,
random_state=seed)`` draws (whole-table row resampling, see
:func:`bootstrap_indices`) with the same ``nanquantile``, so they equal
fairlearn's. The ``interval`` column names the method of each row. Each
resample is counted with ``np.bincount`` instead of re-running metric
functions: MetricFrame's own bootstrap took 26 s for one binary report of 800
rows (three attribute sets), this takes a fraction of a second.
"""
from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import confusion_matrix

from generator.bias.intervals import PROPORTION_INTERVAL, proportion_interval
from generator.errors import ConfigError, DataError
from generator.ordering import natural_key

__all__ = [
    "BY_GROUP_COLUMNS", "CALIBRATION_COLUMNS", "CONFUSION_COLUMNS", "DISPARITY_COLUMNS", "ECE_COLUMNS",
    "BOOTSTRAP_INTERVAL", "METRICS", "ClassificationReport", "bootstrap_indices", "classification_report",
]

METRICS = ("base_rate", "accuracy", "tpr", "fpr", "fnr", "precision", "selection_rate", "f1")
BY_GROUP_COLUMNS = ("attributes", "group", "class", "metric", "value", "ci_low", "ci_high", "interval", "n", "note")
#: How intervals without a closed form are made.
BOOTSTRAP_INTERVAL = "percentile bootstrap"
DISPARITY_COLUMNS = ("attributes", "class", "metric", "difference", "ratio", "min_group", "max_group", "note")
CONFUSION_COLUMNS = ("attributes", "group", "true", "pred", "count")
CALIBRATION_COLUMNS = ("attributes", "group", "bin", "bin_low", "bin_high", "n", "mean_confidence", "accuracy")
ECE_COLUMNS = ("attributes", "group", "ece", "ci_low", "ci_high", "n", "note")
OVERALL = "all"
_SUM_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ClassificationReport:
    """Everything :func:`classification_report` measured, as long tables.

    Attributes
    ----------
    by_group
        One row per (attributes, group, class, metric): ``BY_GROUP_COLUMNS``.
        ``class`` is the class index (nullable ``Int64``; ``<NA>`` for
        ``accuracy``, which is not per class). The overall row has
        ``attributes == group == "all"``.
    disparities
        One row per (attributes, class, metric kind): ``DISPARITY_COLUMNS``.
    confusion
        Counts per group: ``CONFUSION_COLUMNS``.
    calibration
        Reliability curve per group (non-empty bins): ``CALIBRATION_COLUMNS``.
    ece
        Expected calibration error per group: ``ECE_COLUMNS``.
    warnings
        Human-readable remarks (small groups, single-group attributes...).
    """

    by_group: pd.DataFrame
    disparities: pd.DataFrame
    confusion: pd.DataFrame
    calibration: pd.DataFrame
    ece: pd.DataFrame
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Partition:
    """One way of splitting the rows: an attribute set, its group names, each row's group."""

    name: str
    groups: tuple[str, ...]
    codes: np.ndarray


def classification_report(frame: pd.DataFrame, *, attributes: Sequence[str], label: str = "label",
                          pred: str = "pred", scores: Sequence[str] | None = None, n_boot: int = 200,
                          seed: int = 0, level: float = 0.95, min_count: int = 30, n_bins: int = 10,
                          intersections: bool = True,
                          class_names: Sequence[str] | None = None) -> ClassificationReport:
    """Audit a classifier's predictions for group fairness and calibration.

    Parameters
    ----------
    frame
        One row per image with the ``label`` and ``pred`` columns (class indices
        ``0..K-1``), the ``attributes`` columns and, optionally, ``scores``.
    attributes
        Protected-attribute columns; each one alone defines groups.
    label, pred
        Columns with the true and the predicted class index.
    scores
        Predicted probability columns, one per class in class order, e.g.
        ``["prob_0", "prob_1"]``; for a binary task ``["prob_1"]`` alone is
        accepted. ``None`` leaves ``calibration`` and ``ece`` empty.
    n_boot, seed, level
        Percentile bootstrap: resamples, random state, coverage.
    min_count
        Groups with fewer rows are still reported, with a note and a warning.
    n_bins
        Equal-width confidence bins on [0, 1] for the reliability curve and ECE.
    intersections
        Also audit every combination of two or more attributes.
    class_names
        Names of the classes; fixes the number of classes ``K`` (otherwise
        ``K = max(label, pred) + 1``).

    Returns
    -------
    ClassificationReport
        For ``K == 2`` only the positive class 1 is reported; for ``K > 2``
        every class one against the rest.

    Raises
    ------
    DataError
        Missing columns, labels or predictions that are not class indices,
        missing values, scores outside [0, 1] or not summing to 1, an empty table.
    ConfigError
        ``n_boot``, ``level``, ``min_count`` or ``n_bins`` out of range.

    Notes
    -----
    Calibration uses the top-label definition of Guo et al. 2017 for every
    task, binary included: the confidence of a row is the score of its
    predicted class ``pred`` and the bin's ``accuracy`` is the share of rows
    whose prediction is right. For a binary task with ``pred = argmax`` the
    confidences lie in [0.5, 1]. One definition keeps ECE comparable across
    tasks; ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|``.
    """
    _check_options(n_boot=n_boot, level=level, min_count=min_count, n_bins=n_bins)
    _check_columns(frame, [label, pred, *attributes, *(scores or [])])
    y_true, y_pred, n_classes = _class_indices(frame, label=label, pred=pred, class_names=class_names)
    probs = None if scores is None else _class_scores(frame, scores, n_classes)
    conf = _confidences(probs, y_true, y_pred, n_bins)
    partitions = _partitions(frame, attributes=attributes, intersections=intersections)
    quantiles = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    boot_counts, boot_ece = _bootstrap(partitions, y_true, y_pred, n_classes, conf, n_boot=n_boot, seed=seed)
    counts = [_group_confusions(part, y_true, y_pred, n_classes) for part in partitions]
    by_group = pd.concat([_by_group_rows(part, c, boot, quantiles, min_count)
                          for part, c, boot in zip(partitions, counts, boot_counts)], ignore_index=True)
    confusion = pd.concat([_confusion_rows(part, c) for part, c in zip(partitions, counts)], ignore_index=True)
    calibration, ece = _calibration_tables(partitions, conf, boot_ece, quantiles, min_count)
    notes = (*_small_group_warnings(by_group, min_count), *_single_group_warnings(partitions),
             *_prediction_warnings(probs, y_pred))
    return ClassificationReport(by_group, _disparity_table(by_group), confusion, calibration, ece, notes)


# --------------------------------------------------------------------------- validation

def _check_options(*, n_boot: int, level: float, min_count: int, n_bins: int) -> None:
    """Refuse out-of-range options with the accepted range."""
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"n_boot = {n_boot!r}: expected an integer >= 1")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level = {level!r}: expected a coverage strictly between 0 and 1, e.g. 0.95")
    if not isinstance(min_count, int) or min_count < 0:
        raise ConfigError(f"min_count = {min_count!r}: expected an integer >= 0")
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"n_bins = {n_bins!r}: expected an integer >= 1")


def _check_columns(frame: pd.DataFrame, needed: Sequence[str]) -> None:
    """Missing columns and empty tables, named."""
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the table has {list(frame.columns)}")
    if len(frame) == 0:
        raise DataError("the prediction table is empty: at least one row (image) is needed")


def _class_indices(frame: pd.DataFrame, *, label: str, pred: str,
                   class_names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Label and prediction columns as int arrays, and the number of classes K."""
    y_true, y_pred = _integer_column(frame, label), _integer_column(frame, pred)
    if class_names is not None:
        n_classes = len(class_names)
        if n_classes < 2:
            raise DataError(f"class_names = {list(class_names)}: at least two classes are needed")
    else:
        n_classes = int(max(y_true.max(), y_pred.max())) + 1
        if n_classes < 2:
            raise DataError(f"columns {label!r} and {pred!r} hold only class 0; pass class_names to say "
                            "how many classes the task has")
    for name, values in ((label, y_true), (pred, y_pred)):
        bad = values[(values < 0) | (values >= n_classes)]
        if bad.size:
            raise DataError(f"column {name!r} holds {bad.size} value(s) outside the class indices "
                            f"0..{n_classes - 1} (e.g. {int(bad[0])}); accepted: integers 0..{n_classes - 1}")
    return y_true, y_pred, n_classes


def _integer_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """One column as int64, refusing missing and non-integer values by name."""
    values = frame[column]
    missing = int(values.isna().sum())
    if missing:
        raise DataError(f"column {column!r} has {missing} missing value(s) (NaN); every row needs a class index")
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | (numeric != np.round(numeric))
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(f"column {column!r} holds {int(bad.sum())} value(s) that are not integer class "
                        f"indices (e.g. {example!r}); accepted: integers 0..K-1")
    return numeric.to_numpy(dtype=np.int64)


def _class_scores(frame: pd.DataFrame, scores: Sequence[str], n_classes: int) -> np.ndarray:
    """Probability columns as an (N, K) array, validated."""
    if len(scores) not in (n_classes, 1) or (len(scores) == 1 and n_classes != 2):
        raise DataError(f"scores = {list(scores)}: expected one probability column per class "
                        f"({n_classes}), or a single P(y=1) column for a binary task")
    probs = np.column_stack([_probability_column(frame, c) for c in scores])
    if len(scores) == 1:
        return np.column_stack([1.0 - probs[:, 0], probs[:, 0]])
    off = np.abs(probs.sum(axis=1) - 1.0) > _SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(f"score columns {list(scores)} do not sum to 1 (tolerance {_SUM_TOLERANCE}) in "
                        f"{int(off.sum())} row(s), e.g. row {row} sums to {probs[row].sum():.6f}")
    return probs


def _probability_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A probability column as float, refusing NaN and values outside [0, 1]."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).any():
        raise DataError(f"score column {column!r} has {int(np.isnan(values).sum())} missing or non-numeric "
                        "value(s); accepted: probabilities in [0, 1]")
    outside = (values < 0.0) | (values > 1.0)
    if outside.any():
        raise DataError(f"score column {column!r} has {int(outside.sum())} value(s) outside [0, 1] "
                        f"(e.g. {values[outside][0]:g}); accepted: probabilities in [0, 1]")
    return values


# --------------------------------------------------------------------------- groups

def _partitions(frame: pd.DataFrame, *, attributes: Sequence[str], intersections: bool) -> list[_Partition]:
    """The overall partition, each attribute alone, then (optionally) each combination of 2+."""
    if not attributes:
        raise DataError("attributes is empty: name at least one protected-attribute column")
    for column in attributes:
        missing = int(frame[column].isna().sum())
        if missing:
            raise DataError(f"attribute column {column!r} has {missing} missing value(s); fill them "
                            "(e.g. 'unknown') or drop those rows")
    sizes = range(1, len(attributes) + 1) if intersections else (1,)
    sets = [combo for size in sizes for combo in itertools.combinations(attributes, size)]
    overall = _Partition(OVERALL, (OVERALL,), np.zeros(len(frame), dtype=np.int64))
    return [overall, *(_partition(frame, list(combo)) for combo in sets)]


def _partition(frame: pd.DataFrame, columns: list[str]) -> _Partition:
    """Groups of one attribute set in natural order (age bins 3-9 before 10-19), named ``a / b``."""
    grouped = frame.groupby(columns, sort=True, observed=True)
    index = grouped.size().index  # sorted keys, in the order of ngroup()
    keys = list(index) if len(columns) > 1 else [(key,) for key in index]
    order = sorted(range(len(keys)), key=lambda k: tuple(natural_key(v) for v in keys[k]))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    names = tuple(" / ".join(map(str, keys[k])) for k in order)
    return _Partition(" x ".join(columns), names, rank[grouped.ngroup().to_numpy(dtype=np.int64)])


def bootstrap_indices(n_rows: int, *, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of the resamples fairlearn's ``MetricFrame`` draws for ``random_state=seed``.

    fairlearn 0.15 draws ``n_boot`` 32-bit seeds from ``default_rng(seed)`` and
    resamples with ``DataFrame.sample(frac=1, replace=True, random_state=s)``,
    i.e. ``RandomState(s).choice(n, n)``. Reproducing it makes the intervals
    here equal to ``MetricFrame.by_group_ci`` (tested).
    """
    seeds = np.random.default_rng(seed=int(seed)).integers(
        low=0, high=np.iinfo(np.uint32).max, size=n_boot, dtype=np.uint32)
    for state in seeds:
        yield np.random.RandomState(state).choice(n_rows, size=n_rows, replace=True)


# --------------------------------------------------------------------------- rates

@dataclass(frozen=True)
class _Confidence:
    """Per-row confidence of the predicted class, whether it is right, and its bin."""

    confidence: np.ndarray
    correct: np.ndarray
    bins: np.ndarray
    n_bins: int


def _confidences(probs: np.ndarray | None, y_true: np.ndarray, y_pred: np.ndarray,
                 n_bins: int) -> _Confidence | None:
    """Top-label confidences (score of the predicted class) binned on [0, 1]."""
    if probs is None:
        return None
    confidence = probs[np.arange(len(y_pred)), y_pred]
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    return _Confidence(confidence, (y_true == y_pred).astype(float), bins, n_bins)


def _confusion_counts(part: _Partition, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                      index: np.ndarray) -> np.ndarray:
    """Counts ``(G, K, K)`` (rows true, columns predicted) of the rows ``index``."""
    cell = (part.codes[index] * n_classes + y_true[index]) * n_classes + y_pred[index]
    size = len(part.groups) * n_classes**2
    return np.bincount(cell, minlength=size).reshape(len(part.groups), n_classes, n_classes)


def _bootstrap(partitions: list[_Partition], y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
               conf: _Confidence | None, *, n_boot: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Confusion counts ``(B, G, K, K)`` and ECE ``(B, G)`` of every partition on every resample.

    One pass over the resamples, so a resample's index array is never stored.
    """
    counts: list[list[np.ndarray]] = [[] for _ in partitions]
    eces: list[list[np.ndarray]] = [[] for _ in partitions]
    for index in bootstrap_indices(len(y_true), n_boot=n_boot, seed=seed):
        for j, part in enumerate(partitions):
            counts[j].append(_confusion_counts(part, y_true, y_pred, n_classes, index))
            if conf is not None:
                eces[j].append(_ece_from_sums(_bin_sums(part, conf, index)))
    return [np.stack(c) for c in counts], [np.stack(e) if e else np.empty((0, 0)) for e in eces]


def _classes(n_classes: int) -> list[int]:
    """Classes reported one against the rest: the positive class 1 for a binary task."""
    return [1] if n_classes == 2 else list(range(n_classes))


def _group_confusions(part: _Partition, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts ``(G, K, K)`` per group: MetricFrame with scikit-learn's ``confusion_matrix``."""
    frame = MetricFrame(metrics={"confusion": functools.partial(confusion_matrix, labels=range(n_classes))},
                        y_true=y_true, y_pred=y_pred,
                        sensitive_features=pd.Series(np.asarray(part.groups)[part.codes], name="group"))
    cells = frame.by_group["confusion"].reindex(list(part.groups))
    return np.stack([np.asarray(cell, dtype=np.int64) for cell in cells])


def _count_fractions(counts: np.ndarray, k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Numerator and denominator of every rate that is a proportion, from confusion counts ``(..., K, K)``."""
    n = counts.sum(axis=(-2, -1)).astype(float)
    tp = counts[..., k, k].astype(float)
    positives = counts[..., k, :].sum(axis=-1).astype(float)
    predicted = counts[..., :, k].sum(axis=-1).astype(float)
    fp, fn = predicted - tp, positives - tp
    return {
        "base_rate": (positives, n),
        "accuracy": (np.trace(counts, axis1=-2, axis2=-1).astype(float), n),
        "tpr": (tp, positives),
        "fpr": (fp, n - positives),
        "fnr": (fn, positives),
        "precision": (tp, predicted),
        "selection_rate": (predicted, n),
    }


def _count_rates(counts: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Every rate from confusion counts ``(..., K, K)`` (rows true, columns predicted), class k.

    One definition for the estimates and the resamples; 0/0 gives NaN. F1 is
    ``2 TP / (2 TP + FP + FN)`` as in scikit-learn (0, not NaN, when there are
    predicted positives but no positives).
    """
    fractions = _count_fractions(counts, k)
    tp, positives = fractions["tpr"]
    predicted = fractions["precision"][1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = {metric: top / bottom for metric, (top, bottom) in fractions.items()}
        rates["f1"] = 2 * tp / (positives + predicted)  # = 2 TP / (2 TP + FP + FN)
    return rates


def _metric_keys(n_classes: int) -> list[tuple[str, int | None]]:
    """(metric, class) pairs in report order; accuracy once, without a class."""
    keys: list[tuple[str, int | None]] = [("accuracy", None)]
    for k in _classes(n_classes):
        keys += [(m, k) for m in METRICS if m != "accuracy"]
    return keys


def _by_group_rows(part: _Partition, counts: np.ndarray, boot_counts: np.ndarray,
                   quantiles: tuple[float, float], min_count: int) -> pd.DataFrame:
    """Long rows of one partition: value, CI, n and note per group, class and metric."""
    n_classes = counts.shape[-1]
    sizes = counts.sum(axis=(1, 2))
    records = []
    level = quantiles[1] - quantiles[0]
    for metric, k in _metric_keys(n_classes):
        values = _count_rates(counts, 0 if k is None else k)[metric]
        fractions = _count_fractions(counts, 0 if k is None else k)
        if metric in fractions:  # a proportion: Wilson's interval from the group's counts
            low, high = proportion_interval(*fractions[metric], level=level)
            method = PROPORTION_INTERVAL
        else:  # F1 has no closed form: percentile bootstrap
            low, high = _nanquantiles(_count_rates(boot_counts, 0 if k is None else k)[metric], quantiles)
            method = BOOTSTRAP_INTERVAL
        defined = np.isfinite(values)
        records += [{"attributes": part.name, "group": group, "class": k, "metric": metric,
                     "value": values[g], "ci_low": low[g] if defined[g] else np.nan,
                     "ci_high": high[g] if defined[g] else np.nan, "interval": method, "n": int(sizes[g]),
                     "note": _note(counts[g], metric, k, min_count)} for g, group in enumerate(part.groups)]
    table = pd.DataFrame.from_records(records, columns=list(BY_GROUP_COLUMNS))
    return table.astype({"class": "Int64", "value": float, "ci_low": float, "ci_high": float})


def _nanquantiles(samples: np.ndarray, quantiles: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over resamples (axis 0), ignoring resamples where the rate is undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups give NaN, as intended
        low, high = np.nanquantile(samples, q=quantiles, axis=0)
    return low, high


def _note(counts: np.ndarray, metric: str, k: int | None, min_count: int) -> str:
    """Why a value is undefined or shaky (empty when it is neither), from the group's counts."""
    n = int(counts.sum())
    reasons = [_size_note(n, min_count)]
    if k is not None:
        positives, predicted = int(counts[k, :].sum()), int(counts[:, k].sum())
        undefined = {
            "tpr": (positives == 0, f"no positives (y={k}) in this group"),
            "fnr": (positives == 0, f"no positives (y={k}) in this group"),
            "fpr": (positives == n, f"no negatives (y!={k}) in this group"),
            "precision": (predicted == 0, f"no predicted positives (pred={k}) in this group"),
            "f1": (positives + predicted == 0,
                   f"no positives (y={k}) and no predicted positives (pred={k}) in this group"),
        }
        flag, reason = undefined.get(metric, (False, ""))
        reasons.append(reason if flag else "")
    return "; ".join(r for r in reasons if r)


def _size_note(n: int, min_count: int) -> str:
    """The small-group note, or empty."""
    return f"small group (n={n} < {min_count}): interval is wide" if n < min_count else ""


def _confusion_rows(part: _Partition, counts: np.ndarray) -> pd.DataFrame:
    """Long confusion counts of every group."""
    labels = range(counts.shape[-1])
    records = [{"attributes": part.name, "group": group, "true": t, "pred": p, "count": int(counts[g, t, p])}
               for g, group in enumerate(part.groups) for t in labels for p in labels]
    return pd.DataFrame.from_records(records, columns=list(CONFUSION_COLUMNS))


# --------------------------------------------------------------------------- disparities

def _disparity_table(by_group: pd.DataFrame) -> pd.DataFrame:
    """Gaps between groups per attribute set and class (never including the overall row)."""
    rows = []
    table = by_group[by_group["attributes"] != OVERALL]
    for (attributes, k), part in table.groupby(["attributes", "class"], sort=False):
        rate = {m: part[part["metric"] == m].set_index("group")["value"] for m in ("selection_rate", "tpr", "fpr")}
        rows.append(_gap(attributes, int(k), "demographic_parity", rate["selection_rate"], "selection rate"))
        rows.append(_gap(attributes, int(k), "equal_opportunity", rate["tpr"], "TPR"))
        rows.append(_equalized_odds(attributes, int(k), rate["tpr"], rate["fpr"]))
    frame = pd.DataFrame.from_records(rows, columns=list(DISPARITY_COLUMNS))
    return frame.astype({"class": "Int64", "difference": float, "ratio": float})


def _gap(attributes: str, k: int, metric: str, values: pd.Series, label: str) -> dict:
    """max - min and min / max over the groups where the rate is defined (fairlearn's "between_groups")."""
    defined = values.dropna()
    skipped = [str(g) for g in values.index if g not in defined.index]
    notes = [f"{label} undefined in {', '.join(skipped)} (left out)"] if skipped else []
    row = {"attributes": attributes, "class": k, "metric": metric, "difference": np.nan, "ratio": np.nan,
           "min_group": None, "max_group": None}
    if len(values) < 2:
        return row | {"note": f"only one group ({values.index[0]}): no disparity to measure"}
    if len(defined) < 2:
        return row | {"note": "; ".join([*notes, f"{label} defined in fewer than two groups"])}
    low, high = defined.min(), defined.max()
    if high == 0:
        notes.append(f"{label} is 0 in every group: ratio undefined")
    return row | {"difference": high - low, "ratio": low / high if high > 0 else np.nan,
                  "min_group": str(defined.idxmin()), "max_group": str(defined.idxmax()),
                  "note": "; ".join(notes)}


def _equalized_odds(attributes: str, k: int, tpr: pd.Series, fpr: pd.Series) -> dict:
    """Worst of the TPR and FPR gaps (fairlearn's ``agg="worst_case"``); groups of the larger difference."""
    by_tpr, by_fpr = _gap(attributes, k, "equal_opportunity", tpr, "TPR"), _gap(attributes, k, "fpr", fpr, "FPR")
    worst = by_fpr if _larger(by_fpr["difference"], by_tpr["difference"]) else by_tpr
    notes = [n for n in (by_tpr["note"], by_fpr["note"]) if n]
    if np.isfinite(worst["difference"]):
        notes.append(f"largest gap in {'FPR' if worst is by_fpr else 'TPR'}")
    ratios = [r for r in (by_tpr["ratio"], by_fpr["ratio"]) if np.isfinite(r)]
    difference = max(by_tpr["difference"], by_fpr["difference"]) if np.isfinite(worst["difference"]) else np.nan
    if not (np.isfinite(by_tpr["difference"]) and np.isfinite(by_fpr["difference"])):
        difference, ratios = np.nan, []
    return worst | {"metric": "equalized_odds", "difference": difference,
                    "ratio": min(ratios) if len(ratios) == 2 else np.nan, "note": "; ".join(dict.fromkeys(notes))}


def _larger(a: float, b: float) -> bool:
    """``a > b`` with NaN counted as smaller than anything."""
    return bool(np.isfinite(a) and (not np.isfinite(b) or a > b))


# --------------------------------------------------------------------------- calibration

def _calibration_tables(partitions: list[_Partition], conf: _Confidence | None, boot_ece: list[np.ndarray],
                        quantiles: tuple[float, float], min_count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reliability bins and ECE per group, or empty tables without scores."""
    if conf is None:
        return pd.DataFrame(columns=list(CALIBRATION_COLUMNS)), pd.DataFrame(columns=list(ECE_COLUMNS))
    curves, eces = [], []
    for part, samples in zip(partitions, boot_ece):
        sums = _bin_sums(part, conf)
        curves.append(_curve_rows(part, sums))
        eces.append(_ece_rows(part, sums, samples, quantiles, min_count))
    return pd.concat(curves, ignore_index=True), pd.concat(eces, ignore_index=True)


def _bin_sums(part: _Partition, conf: _Confidence, index: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Per group and bin: count, sum of confidences, number right; shape ``(3, G, n_bins)``."""
    cell = part.codes[index] * conf.n_bins + conf.bins[index]
    size = len(part.groups) * conf.n_bins
    sums = [np.bincount(cell, minlength=size).astype(float),
            np.bincount(cell, weights=conf.confidence[index], minlength=size),
            np.bincount(cell, weights=conf.correct[index], minlength=size)]
    return np.stack(sums).reshape(3, len(part.groups), conf.n_bins)


def _ece_from_sums(sums: np.ndarray) -> np.ndarray:
    """ECE per group from bin sums: ``sum_b |right_b - confidence_b| / n`` (Guo et al. 2017, eq. 3)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(sums[2] - sums[1]).sum(axis=-1) / sums[0].sum(axis=-1)


def _curve_rows(part: _Partition, sums: np.ndarray) -> pd.DataFrame:
    """Non-empty reliability bins of every group."""
    count, conf, right = sums
    n_bins = sums.shape[-1]
    records = [{"attributes": part.name, "group": group, "bin": b, "bin_low": b / n_bins,
                "bin_high": (b + 1) / n_bins, "n": int(count[g, b]), "mean_confidence": conf[g, b] / count[g, b],
                "accuracy": right[g, b] / count[g, b]}
               for g, group in enumerate(part.groups) for b in range(n_bins) if count[g, b] > 0]
    return pd.DataFrame.from_records(records, columns=list(CALIBRATION_COLUMNS))


def _ece_rows(part: _Partition, sums: np.ndarray, samples: np.ndarray, quantiles: tuple[float, float],
              min_count: int) -> pd.DataFrame:
    """ECE per group with its bootstrap interval."""
    value = _ece_from_sums(sums)
    low, high = _nanquantiles(samples, quantiles)
    sizes = sums[0].sum(axis=1).astype(int)
    records = [{"attributes": part.name, "group": group, "ece": value[g], "ci_low": low[g], "ci_high": high[g],
                "n": int(sizes[g]), "note": _size_note(int(sizes[g]), min_count)}
               for g, group in enumerate(part.groups)]
    return pd.DataFrame.from_records(records, columns=list(ECE_COLUMNS))


# --------------------------------------------------------------------------- warnings

def _small_group_warnings(by_group: pd.DataFrame, min_count: int) -> tuple[str, ...]:
    """One warning per group below ``min_count`` rows."""
    sizes = by_group.drop_duplicates(["attributes", "group"])
    small = sizes[sizes["n"] < min_count]
    return tuple(f"{row.attributes} = {row.group}: only n={row.n} rows (< min_count={min_count}); "
                 "its rates are reported with wide intervals" for row in small.itertuples())


def _single_group_warnings(partitions: list[_Partition]) -> tuple[str, ...]:
    """Attribute sets with a single group: no disparity can be measured."""
    return tuple(f"{p.name} has a single group ({p.groups[0]}): its disparities are NaN"
                 for p in partitions[1:] if len(p.groups) == 1)


def _prediction_warnings(probs: np.ndarray | None, y_pred: np.ndarray) -> tuple[str, ...]:
    """Predictions that are not the highest score (calibration then uses the predicted class's score)."""
    if probs is None:
        return ()
    disagree = int((y_pred != probs.argmax(axis=1)).sum())
    if not disagree:
        return ()
    message = (f"pred differs from the highest score in {disagree} row(s): calibration uses the score of "
               "the predicted class")
    return (message,)
