"""Group fairness of a classifier: every number checked against an independent computation.

Rates are recomputed with boolean masks per group; disparities with fairlearn's own
functions (abs 1e-12); Wilson intervals of the rates against SciPy's binomtest, F1's
bootstrap interval against fairlearn's MetricFrame bootstrap (same resamples, abs 1e-12);
ECE on synthetic scores whose calibration is known.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import f1_score, precision_score, recall_score

from generator.bias.accuracy import accuracy_by_group
from generator.bias.classification import (
    BY_GROUP_COLUMNS,
    CALIBRATION_COLUMNS,
    CONFUSION_COLUMNS,
    DISPARITY_COLUMNS,
    ECE_COLUMNS,
    classification_report,
)
from generator.errors import DataError

ATTRIBUTES = ["skin", "age"]
EXACT = 1e-12


def _frame(n_classes: int, *, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A fixed small prediction table: 2 attributes (2 x 3 groups), right 60 % of the time."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, n_classes, n)
    pred = np.where(rng.random(n) < 0.6, label, rng.integers(0, n_classes, n))
    return pd.DataFrame({"skin": rng.choice(["dark", "light"], n), "age": rng.choice(["old", "mid", "young"], n),
                         "label": label, "pred": pred})


def _mask(frame: pd.DataFrame, attributes: str, group: str) -> np.ndarray:
    """Rows of a group named as in the report ("skin x age", "dark / old"; "all")."""
    if attributes == "all":
        return np.ones(len(frame), dtype=bool)
    mask = np.ones(len(frame), dtype=bool)
    for column, value in zip(attributes.split(" x "), group.split(" / ")):
        mask &= frame[column].astype(str).to_numpy() == value
    return mask


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else np.nan


def _expected(frame: pd.DataFrame, mask: np.ndarray, metric: str, k: int | None) -> float:
    """The rate computed from scratch with masks."""
    y, p = frame["label"].to_numpy()[mask], frame["pred"].to_numpy()[mask]
    if metric == "accuracy":
        return _ratio(int((y == p).sum()), len(y))
    pos, sel = y == k, p == k
    tp, fp, fn = int((pos & sel).sum()), int((~pos & sel).sum()), int((pos & ~sel).sum())
    return {"base_rate": _ratio(int(pos.sum()), len(y)), "tpr": _ratio(tp, int(pos.sum())),
            "fnr": _ratio(fn, int(pos.sum())), "fpr": _ratio(fp, int((~pos).sum())),
            "precision": _ratio(tp, int(sel.sum())), "selection_rate": _ratio(int(sel.sum()), len(y)),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn)}[metric]


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "three-class"])
def audited(request):
    frame = _frame(request.param)
    return frame, classification_report(frame, attributes=ATTRIBUTES, n_boot=50, seed=1, min_count=5)


def test_every_rate_matches_a_mask_computation(audited):
    frame, report = audited
    assert tuple(report.by_group.columns) == BY_GROUP_COLUMNS
    for row in report.by_group.itertuples():
        k = None if pd.isna(row._3) else int(row._3)
        mask = _mask(frame, row.attributes, row.group)
        expected = _expected(frame, mask, row.metric, k)
        assert row.n == mask.sum()
        if np.isnan(expected):
            assert np.isnan(row.value) and row.note, row
        else:
            assert row.value == pytest.approx(expected, abs=EXACT), row


def test_rates_equal_sklearn_and_fairlearn_functions_where_defined(audited):
    frame, report = audited
    functions = {"tpr": lambda t, p: recall_score(t, p, zero_division=np.nan),
                 "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
                 "f1": lambda t, p: f1_score(t, p, zero_division=np.nan),
                 "fpr": lambda t, p: false_positive_rate(t, p, pos_label=1),
                 "fnr": lambda t, p: false_negative_rate(t, p, pos_label=1),
                 "selection_rate": lambda t, p: selection_rate(t, p, pos_label=1)}
    rows = report.by_group[report.by_group["metric"].isin(list(functions))]
    for row in rows.itertuples():
        mask, k = _mask(frame, row.attributes, row.group), int(row._3)
        y, p = (frame["label"][mask] == k).astype(int), (frame["pred"][mask] == k).astype(int)
        expected = functions[row.metric](y, p)
        if np.isnan(row.value):
            # the pitfall: fairlearn's FPR/FNR give 0 for an empty denominator; sklearn gives NaN as asked
            assert expected == 0.0 or np.isnan(expected), row
        else:
            assert row.value == pytest.approx(expected, abs=EXACT), row


def test_groups_cover_each_attribute_intersection_and_overall(audited):
    frame, report = audited
    table = report.by_group
    assert set(table["attributes"]) == {"all", "skin", "age", "skin x age"}
    expected = {f"{s} / {a}" for s, a in zip(frame["skin"], frame["age"])}
    assert set(table.loc[table["attributes"] == "skin x age", "group"]) == expected
    classes = set(table["class"].dropna())
    assert classes == ({1} if frame["label"].max() == 1 else {0, 1, 2})
    assert table.loc[table["metric"] == "accuracy", "class"].isna().all()


def test_three_class_frame_exercises_undefined_rates():
    report = classification_report(_frame(3), attributes=ATTRIBUTES, n_boot=5, min_count=5)
    undefined = report.by_group[report.by_group["value"].isna()]
    assert len(undefined) > 0 and undefined["note"].str.contains("no ").all()
    assert undefined["ci_low"].isna().all()


def test_disparities_equal_fairlearn_one_class_against_the_rest(audited):
    frame, report = audited
    assert tuple(report.disparities.columns) == DISPARITY_COLUMNS
    functions = {"demographic_parity": (demographic_parity_difference, demographic_parity_ratio),
                 "equal_opportunity": (equal_opportunity_difference, equal_opportunity_ratio),
                 "equalized_odds": (equalized_odds_difference, equalized_odds_ratio)}
    checked = 0
    for row in report.disparities.itertuples():
        k, columns = int(row._2), row.attributes.split(" x ")
        y, p = (frame["label"] == k).astype(int), (frame["pred"] == k).astype(int)
        by_group = report.by_group[(report.by_group["attributes"] == row.attributes)
                                   & (report.by_group["class"] == k)]
        if by_group.loc[by_group["metric"].isin(["tpr", "fpr"]), "value"].isna().any():
            continue  # fairlearn would count an undefined rate as 0; tested separately
        difference, ratio = functions[row.metric]
        assert row.difference == pytest.approx(difference(y, p, sensitive_features=frame[columns]), abs=EXACT)
        assert row.ratio == pytest.approx(ratio(y, p, sensitive_features=frame[columns]), abs=EXACT)
        checked += 1
    assert checked >= 6


def test_disparity_names_the_extreme_groups(audited):
    _, report = audited
    for row in report.disparities[report.disparities["metric"] == "demographic_parity"].itertuples():
        rates = report.by_group[(report.by_group["attributes"] == row.attributes)
                                & (report.by_group["class"] == row._2)
                                & (report.by_group["metric"] == "selection_rate")].set_index("group")["value"]
        assert rates[row.min_group] == rates.min() and rates[row.max_group] == rates.max()
        assert row.difference == pytest.approx(rates.max() - rates.min(), abs=EXACT)


def test_rate_intervals_are_wilson_and_f1_keeps_fairlearns_bootstrap():
    from scipy.stats import binomtest

    frame = _frame(2, n=120, seed=4)
    report = classification_report(frame, attributes=["skin"], n_boot=20, seed=7, intersections=False)
    rows = report.by_group[report.by_group["attributes"] == "skin"]
    for group, part in frame.groupby("skin"):
        t, p = part["label"].to_numpy(), part["pred"].to_numpy()
        counts = {"selection_rate": ((p == 1).sum(), len(p)), "tpr": ((p[t == 1] == 1).sum(), (t == 1).sum()),
                  "fpr": ((p[t == 0] == 1).sum(), (t == 0).sum()), "accuracy": ((p == t).sum(), len(p))}
        for metric, (k, n) in counts.items():
            row = rows[(rows["group"] == group) & (rows["metric"] == metric)].iloc[0]
            ci = binomtest(int(k), int(n)).proportion_ci(method="wilson")
            assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=EXACT), (group, metric)
            assert row.interval == "Wilson score interval"
    f1 = lambda t, p: f1_score(t, p, zero_division=np.nan)  # noqa: E731
    mf = MetricFrame(metrics={"f1": f1}, y_true=frame["label"].to_numpy(), y_pred=frame["pred"].to_numpy(),
                     sensitive_features=frame["skin"], n_boot=20, ci_quantiles=[0.025, 0.975], random_state=7)
    low, high = mf.by_group_ci
    f1_rows = rows[rows["metric"] == "f1"].set_index("group")
    np.testing.assert_allclose(f1_rows["ci_low"], low["f1"].reindex(f1_rows.index), atol=EXACT)
    np.testing.assert_allclose(f1_rows["ci_high"], high["f1"].reindex(f1_rows.index), atol=EXACT)
    assert set(f1_rows["interval"]) == {"percentile bootstrap"}
    reference = accuracy_by_group(frame, by=["skin"]).set_index("skin")
    accuracy = report.by_group[report.by_group["metric"] == "accuracy"].set_index("group")
    for group in ("dark", "light", "all"):
        assert accuracy.at[group, "ci_low"] == pytest.approx(reference.at[group, "ci_low"], abs=EXACT)
        assert accuracy.at[group, "ci_high"] == pytest.approx(reference.at[group, "ci_high"], abs=EXACT)


def test_a_perfect_group_gets_an_interval_below_one():
    frame = pd.DataFrame({"g": ["a"] * 192 + ["b"] * 192, "label": [1, 0] * 192,
                          "pred": [1, 0] * 96 + [1, 0] * 95 + [0, 1]})
    table = accuracy_by_group(frame, by=["g"]).set_index("g")
    assert table.at["a", "accuracy"] == 1.0 and table.at["a", "ci_high"] == 1.0
    assert table.at["a", "ci_low"] == pytest.approx(0.9804, abs=1e-4)  # Wilson, 192 of 192
    assert (table.at["b", "ci_low"], table.at["b", "ci_high"]) == pytest.approx((0.9628, 0.9971), abs=1e-4)  # 190 of 192


def test_interval_contains_estimate_on_a_larger_frame():
    frame = _frame(2, n=800, seed=2)
    table = classification_report(frame, attributes=ATTRIBUTES, n_boot=200, seed=0).by_group.dropna(
        subset=["value"])
    assert (table["ci_low"] <= table["value"] + EXACT).all() and (table["value"] <= table["ci_high"] + EXACT).all()
    assert (table["ci_high"] > table["ci_low"]).all()


def test_undefined_rate_is_nan_with_reason_never_zero():
    frame = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6,
                          "label": [1, 0, 1, 0, 1, 0] + [0] * 6, "pred": [1, 0, 0, 0, 1, 1] + [0] * 6})
    report = classification_report(frame, attributes=["g"], n_boot=20, min_count=0)
    rows = report.by_group[report.by_group["group"] == "b"].set_index("metric")
    for metric in ("tpr", "fnr"):
        assert np.isnan(rows.at[metric, "value"]) and "no positives (y=1) in this group" in rows.at[metric, "note"]
    assert np.isnan(rows.at["precision", "value"]) and "no predicted positives" in rows.at["precision", "note"]
    assert np.isnan(rows.at["f1", "value"])
    assert rows.at["fpr", "value"] == 0.0 and rows.at["fpr", "note"] == ""  # defined: 6 negatives, 0 false alarms
    opportunity = report.disparities.set_index("metric").loc["equal_opportunity"]
    assert np.isnan(opportunity["difference"]) and "undefined in b" in opportunity["note"]


def test_small_group_is_kept_with_note_and_warning():
    frame = _frame(2, n=60, seed=3)
    frame.loc[:4, "skin"] = "rare"
    report = classification_report(frame, attributes=["skin"], n_boot=20, min_count=30)
    rare = report.by_group[report.by_group["group"] == "rare"]
    assert len(rare) == 8 and (rare["n"] == 5).all()
    assert rare["note"].str.contains(r"small group \(n=5 < 30\): interval is wide").all()
    assert any("rare" in w and "n=5" in w for w in report.warnings)


def test_confusion_matrix_sums_to_group_size(audited):
    frame, report = audited
    assert tuple(report.confusion.columns) == CONFUSION_COLUMNS
    for (attributes, group), cells in report.confusion.groupby(["attributes", "group"]):
        mask = _mask(frame, attributes, group)
        assert cells["count"].sum() == mask.sum()
        for cell in cells.itertuples():
            expected = ((frame["label"][mask] == cell.true) & (frame["pred"][mask] == cell.pred)).sum()
            assert cell.count == expected


def _calibrated(n: int, seed: int, squash: float = 1.0) -> pd.DataFrame:
    """Labels drawn Bernoulli(p); the reported score is p squashed towards 0.5 by ``squash``."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    label = (rng.random(n) < p).astype(int)
    score = 0.5 + squash * (p - 0.5)
    return pd.DataFrame({"g": rng.choice(["a", "b"], n), "label": label, "pred": (score >= 0.5).astype(int),
                         "prob_1": score})


def test_ece_is_small_when_calibrated_and_large_when_squashed():
    good = classification_report(_calibrated(20000, seed=5), attributes=["g"], scores=["prob_1"], n_boot=30)
    bad = classification_report(_calibrated(20000, seed=5, squash=0.3), attributes=["g"], scores=["prob_1"],
                                n_boot=30)
    assert tuple(good.ece.columns) == ECE_COLUMNS and tuple(good.calibration.columns) == CALIBRATION_COLUMNS
    assert (good.ece["ece"] < 0.02).all()
    # squashed scores: confidence 0.5 + 0.3|p - 0.5| against accuracy 0.5 + |p - 0.5|: ECE about 0.175
    assert (bad.ece["ece"] > 0.12).all()
    for table in (good.ece, bad.ece):
        assert ((table["ci_low"] <= table["ece"]) & (table["ece"] <= table["ci_high"])).all()


def test_ece_and_bins_match_a_direct_computation():
    frame = _calibrated(400, seed=6, squash=0.8)
    frame["prob_0"] = 1.0 - frame["prob_1"]
    report = classification_report(frame, attributes=["g"], scores=["prob_0", "prob_1"], n_boot=10, n_bins=5)
    confidence = np.where(frame["pred"] == 1, frame["prob_1"], frame["prob_0"])
    bins = np.minimum((confidence * 5).astype(int), 4)
    right = (frame["label"] == frame["pred"]).to_numpy()
    for row in report.ece.itertuples():
        mask = _mask(frame, row.attributes, row.group)
        gaps = [abs(right[mask & (bins == b)].sum() - confidence[mask & (bins == b)].sum()) for b in range(5)]
        assert row.ece == pytest.approx(sum(gaps) / mask.sum(), abs=EXACT)
    overall = report.calibration[report.calibration["attributes"] == "all"]
    assert overall["n"].sum() == len(frame) and (overall["bin_high"] > 0.5).all()  # confidence >= 0.5


def test_no_scores_gives_empty_calibration_tables(audited):
    _, report = audited
    assert report.calibration.empty and tuple(report.calibration.columns) == CALIBRATION_COLUMNS
    assert report.ece.empty and tuple(report.ece.columns) == ECE_COLUMNS


def test_single_group_attribute_is_allowed_with_nan_disparities():
    frame = _frame(2).assign(site="lab")
    report = classification_report(frame, attributes=["site"], n_boot=5)
    assert report.disparities["difference"].isna().all()
    assert report.disparities["note"].str.contains("only one group").all()
    assert any("site" in w and "single group" in w for w in report.warnings)


@pytest.mark.parametrize(("change", "kwargs", "words"), [
    (lambda f: f.drop(columns="age"), {}, ["'age'", "skin"]),
    (lambda f: f.assign(label=f["label"].where(f.index != 3, 3)), {"class_names": ["a", "b", "c"]},
     ["'label'", "0..2", "3"]),
    (lambda f: f.assign(pred=f["pred"].astype(float).where(f.index != 2)), {}, ["'pred'", "missing"]),
    (lambda f: f.assign(label=0, pred=0), {}, ["only class 0", "class_names"]),
    (lambda f: f.assign(label=f["label"].astype(str).where(f.index != 1, "cat")), {}, ["'label'", "cat"]),
    (lambda f: f.assign(skin=f["skin"].where(f.index != 0)), {}, ["'skin'", "missing"]),
    (lambda f: f.iloc[:0], {}, ["empty"]),
    (lambda f: f.assign(prob_1=1.5), {"scores": ["prob_1"]}, ["'prob_1'", "outside [0, 1]"]),
    (lambda f: f.assign(prob_0=0.5, prob_1=0.6), {"scores": ["prob_0", "prob_1"]}, ["sum to 1"]),
])
def test_bad_input_names_the_column(change, kwargs, words):
    with pytest.raises(DataError) as error:
        classification_report(change(_frame(2)), attributes=ATTRIBUTES, n_boot=5, **kwargs)
    for word in words:
        assert word in str(error.value)
