"""Verification pairs: BFW's datatable format (a tiny generated file) and pairs built from embeddings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import generator.bias.pairs as pairs_module
from generator.bias.pairs import (
    BFW_COLUMNS,
    PAIR_COLUMNS,
    pairs_from_embeddings,
    read_bfw_datatable,
)
from generator.errors import DataError

BFW_ROWS = [
    # fold, p1, p2, label, id1, id2, att1, att2, vgg16, resnet50, senet50, a1, a2, g1, g2, e1, e2
    (1, "asian_females/n0001/0001.jpg", "asian_females/n0001/0002.jpg", 1, 0, 0, "asian_females",
     "asian_females", 0.71, 0.65, 0.69, "AF", "AF", "F", "F", "A", "A"),
    (1, "asian_females/n0001/0001.jpg", "asian_females/n0002/0001.jpg", 0, 0, 1, "asian_females",
     "asian_females", 0.21, 0.12, 0.18, "AF", "AF", "F", "F", "A", "A"),
    (2, "white_males/n0100/0003.jpg", "white_males/n0100/0007.jpg", 1, 100, 100, "white_males",
     "white_males", 0.55, 0.61, 0.58, "WM", "WM", "M", "M", "W", "W"),
    (3, "black_males/n0200/0001.jpg", "indian_males/n0300/0001.jpg", 0, 200, 300, "black_males",
     "indian_males", -0.05, 0.02, 0.01, "BM", "IM", "M", "M", "B", "I"),
]


def _write(tmp_path, rows=BFW_ROWS, columns=BFW_COLUMNS, name="bfw-v0.1.5-datatable.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def test_reads_a_bfw_datatable(tmp_path):
    table = read_bfw_datatable(_write(tmp_path))
    assert list(table.columns) == ["fold", "p1", "p2", "id1", "id2", "label", "score", "subgroup", "subgroup_1",
                                   "subgroup_2", "gender", "ethnicity"]
    assert table["score"].tolist() == [0.65, 0.12, 0.61, 0.02]
    assert table["label"].tolist() == [1, 0, 1, 0] and table["fold"].tolist() == [1, 1, 2, 3]
    assert table["subgroup"].tolist() == ["AF", "AF", "WM", "BM-IM"]
    assert table["gender"].tolist() == ["F", "F", "M", "M"] and table["ethnicity"].tolist()[-1] == "B-I"
    assert read_bfw_datatable(_write(tmp_path), score="vgg16")["score"].tolist() == [0.71, 0.21, 0.55, -0.05]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nothere.csv"):
        read_bfw_datatable(tmp_path / "nothere.csv")


def test_missing_columns_are_listed(tmp_path):
    columns = [c for c in BFW_COLUMNS if c not in ("a2", "resnet50")]
    rows = [tuple(v for c, v in zip(BFW_COLUMNS, row) if c in columns) for row in BFW_ROWS]
    with pytest.raises(DataError) as error:
        read_bfw_datatable(_write(tmp_path, rows, columns))
    assert "'a2'" in str(error.value) and "'resnet50'" in str(error.value) and "datatable.csv" in str(error.value)


@pytest.mark.parametrize(("column", "value", "words"), [
    ("a1", "XF", ["'a1'", "1 row", "XF", "AF, AM"]),
    ("resnet50", "n/a", ["'resnet50'", "1 row", "not numbers"]),
    ("label", 2, ["'label'", "1 row"]),
    ("g2", "X", ["'g2'", "F, M"]),
])
def test_bad_values_name_file_column_and_rows(tmp_path, column, value, words):
    rows = [list(row) for row in BFW_ROWS]
    rows[2][BFW_COLUMNS.index(column)] = value
    with pytest.raises(DataError) as error:
        read_bfw_datatable(_write(tmp_path, rows))
    for word in [*words, "datatable.csv"]:
        assert word in str(error.value)


def _faces(per_identity: int = 5, identities: int = 12, seed: int = 0):
    """An image table of two subgroups with random 6-d embeddings."""
    rows = [{"identity": f"{g}{i:02d}", "image_id": f"{g}{i:02d}_{j}", "group": g, "sex": "F"}
            for g in ("A", "B") for i in range(identities) for j in range(per_identity)]
    table = pd.DataFrame(rows)
    return table, np.random.default_rng(seed).normal(size=(len(table), 6))


@pytest.fixture(scope="module")
def built():
    table, embeddings = _faces()
    return table, embeddings, pairs_from_embeddings(table, embeddings, subgroup="group",
                                                    max_genuine_per_identity=6, imposters_per_genuine=3,
                                                    seed=4, n_folds=3)


def test_genuine_pairs_share_an_identity_and_are_sampled_per_identity(built):
    table, _, pairs = built
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    genuine = pairs[pairs["label"] == 1]
    assert (genuine["id1"] == genuine["id2"]).all()
    assert (genuine.groupby("id1").size() == 6).all()  # 10 possible pairs per identity, sampled down to 6
    assert genuine["id1"].nunique() == 24
    identity_of = table.set_index("image_id")["identity"]
    assert (identity_of[genuine["p1"]].to_numpy() == genuine["id1"].to_numpy()).all()


def test_imposters_differ_in_identity_within_subgroup_and_fold(built):
    table, _, pairs = built
    imposter = pairs[pairs["label"] == 0]
    assert (imposter["id1"] != imposter["id2"]).all()
    subgroup_of = table.set_index("identity")["group"].groupby(level=0).first()
    assert (subgroup_of[imposter["id1"]].to_numpy() == subgroup_of[imposter["id2"]].to_numpy()).all()
    assert (imposter["subgroup"].to_numpy() == subgroup_of[imposter["id1"]].to_numpy()).all()
    # 3 imposters per genuine pair in each (subgroup, fold) cell, and each pair only once
    per_cell = pairs.groupby(["subgroup", "fold", "label"]).size().unstack()
    assert (per_cell[0] == 3 * per_cell[1]).all()
    assert not imposter[["p1", "p2"]].apply(frozenset, axis=1).duplicated().any()


def test_folds_are_subject_disjoint(built):
    _, _, pairs = built
    folds = pd.concat([pairs[["id1", "fold"]].set_axis(["id", "fold"], axis=1),
                       pairs[["id2", "fold"]].set_axis(["id", "fold"], axis=1)])
    assert (folds.groupby("id")["fold"].nunique() == 1).all()
    assert set(pairs["fold"]) == {1, 2, 3}
    assert (pairs.groupby(["subgroup", "fold"])["id1"].nunique() == 4).all()  # 12 identities dealt to 3 folds


def test_scores_are_cosine_similarities(built):
    table, embeddings, pairs = built
    vectors = dict(zip(table["image_id"], embeddings))
    for row in pairs.sample(40, random_state=0).itertuples():
        a, b = vectors[row.p1], vectors[row.p2]
        assert row.score == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-12)


def test_same_seed_same_pairs_other_seed_other_pairs(built):
    table, embeddings, pairs = built
    kwargs = {"subgroup": "group", "max_genuine_per_identity": 6, "imposters_per_genuine": 3, "n_folds": 3}
    pd.testing.assert_frame_equal(pairs, pairs_from_embeddings(table, embeddings, seed=4, **kwargs))
    assert not pairs.equals(pairs_from_embeddings(table, embeddings, seed=5, **kwargs))


def test_rejection_sampling_path_gives_valid_distinct_pairs(monkeypatch):
    table, embeddings = _faces(per_identity=4, identities=30)
    monkeypatch.setattr(pairs_module, "_ENUMERATE_LIMIT", 0)
    pairs = pairs_from_embeddings(table, embeddings, subgroup=["group", "sex"], imposters_per_genuine=2,
                                  n_folds=2)
    imposter = pairs[pairs["label"] == 0]
    assert set(pairs["subgroup"]) == {"A / F", "B / F"}
    assert (imposter["id1"] != imposter["id2"]).all() and (imposter["id1"].str[0] == imposter["id2"].str[0]).all()
    assert not imposter[["p1", "p2"]].apply(frozenset, axis=1).duplicated().any()
    assert len(imposter) == 2 * (pairs["label"] == 1).sum()


def test_imposters_are_capped_at_the_pairs_available():
    table, embeddings = _faces(per_identity=2, identities=2)
    pairs = pairs_from_embeddings(table, embeddings, subgroup="group", imposters_per_genuine=50, n_folds=1)
    # per subgroup: 2 identities x 2 images -> 4 different-identity pairs
    assert (pairs[pairs["label"] == 0].groupby("subgroup").size() == 4).all()


def test_identity_in_two_subgroups_is_refused():
    table, embeddings = _faces(per_identity=2, identities=2)
    table.loc[0, "group"] = "B"
    with pytest.raises(DataError, match="'A00'"):
        pairs_from_embeddings(table, embeddings, subgroup="group")


def test_missing_column_and_misaligned_embeddings_are_named():
    table, embeddings = _faces(per_identity=2, identities=2)
    with pytest.raises(DataError, match="'person'"):
        pairs_from_embeddings(table, embeddings, subgroup="group", identity="person")
    with pytest.raises(DataError, match="one row per row"):
        pairs_from_embeddings(table, embeddings[:-1], subgroup="group")
