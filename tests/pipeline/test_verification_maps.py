"""Explaining verification: deciding and sampling the pairs, the region tests, and the sentences built on them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.config import parse_config
from generator.pipeline.results_verification_maps import region_tests
from generator.pipeline.verification_maps import OUTCOMES, _sample, decided_pairs
from generator.report.verification_text import false_match_text, region_findings


def _identities(n_ids: int = 12, per_id: int = 4, dim: int = 16, spread: float = 0.5, seed: int = 0):
    """A table of faces of ``n_ids`` identities in two bands, and embeddings clustered by identity."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    rows, vectors = [], []
    for i in range(n_ids):
        for j in range(per_id):
            rows.append({"image_id": f"i{i}-{j}", "identity": f"id{i}", "skin_tone": "MST 1-3" if i % 2 else "MST 8-10"})
            vectors.append(centres[i] + spread * rng.normal(size=dim))
    return pd.DataFrame(rows), np.asarray(vectors, dtype=np.float32)


def _config(**explain):
    return parse_config({"verification": {"face_recognition": {"imposters_per_genuine": 3,
                                                               "explain": {"far": 0.1, **explain}}}}, source="test")


def test_every_pair_gets_the_outcome_its_score_and_label_give():
    table, embeddings = _identities()
    pairs, threshold = decided_pairs(table, embeddings, _config())
    accepted = pairs["score"] >= threshold
    genuine = pairs["label"] == 1
    expected = np.select([genuine & accepted, genuine & ~accepted, ~genuine & accepted],
                         ["match", "false non-match", "false match"], "correct rejection")
    assert (pairs["outcome"].to_numpy() == expected).all()
    # the threshold is set for FAR 0.1 over all imposter pairs: at most a tenth of them are accepted
    imposters = pairs[~genuine]
    assert 0 < (imposters["outcome"] == "false match").mean() <= 0.1


def test_the_sample_takes_up_to_n_pairs_per_cell_and_one_median_pair_for_the_gallery():
    table, embeddings = _identities()
    pairs, _ = decided_pairs(table, embeddings, _config())
    chosen, counts = _sample(pairs, 5, seed=3)
    again, _ = _sample(pairs, 5, seed=3)
    pd.testing.assert_frame_equal(chosen, again)  # seeded
    for row in counts.itertuples():
        cell = chosen[(chosen["subgroup"] == row.subgroup) & (chosen["outcome"] == row.outcome)]
        assert len(cell) == row.explained == min(5, row.pairs)
        assert cell["gallery"].sum() == 1
        median = np.median(cell["score"])
        shown = float(cell.loc[cell["gallery"], "score"].iloc[0])
        assert abs(shown - median) == pytest.approx(np.abs(cell["score"] - median).min())
    assert counts["pairs"].sum() == len(pairs)
    # outcomes come in the order of OUTCOMES within each band
    for _, band in chosen.groupby("subgroup"):
        ranks = band["outcome"].map({o: i for i, o in enumerate(OUTCOMES)}).to_numpy()
        assert (np.diff(ranks) >= 0).all()


def _shares(effect: float, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Pair-level region shares: hair carries ``effect`` more in the false matches of MST 8-10, nothing else."""
    rng = np.random.default_rng(seed)
    rows = []
    for band in ("MST 1-3", "MST 8-10"):
        for outcome in ("false match", "correct rejection"):
            for pair in range(n):
                hair = 0.3 + rng.normal(0, 0.05) + (effect if (band, outcome) == ("MST 8-10", "false match") else 0)
                for region, share in (("hair", hair), ("skin", 1 - hair)):
                    rows.append({"pair": pair, "subgroup": band, "outcome": outcome, "region": region,
                                 "share": share})
    return pd.DataFrame(rows)


def test_region_tests_find_a_planted_difference_and_only_there():
    table = region_tests(_shares(0.1), seed=0, n_permutations=999)
    hit = table[(table["subgroup"] == "MST 8-10") & (table["region"] == "hair")].iloc[0]
    assert hit["significant"] and hit["difference"] == pytest.approx(0.1, abs=0.03)
    assert hit["ci_low"] < hit["difference"] < hit["ci_high"]
    assert not table[table["subgroup"] == "MST 1-3"]["significant"].any()
    # skin is 1 - hair: the same difference, the other sign
    skin = table[(table["subgroup"] == "MST 8-10") & (table["region"] == "skin")].iloc[0]
    assert skin["difference"] == pytest.approx(-hit["difference"])
    # power: two-sided at the strictest Holm level of 4 tests, n = 40 a side, sd about 0.05
    from scipy.stats import norm

    d = (norm.ppf(1 - 0.05 / 8) + norm.ppf(0.8)) / np.sqrt(40 * 40 / 80)
    assert table["min_detectable"].iloc[0] == pytest.approx(d * 0.05, rel=0.25)
    assert table["subgroup"].tolist()[0] == "MST 1-3"


def test_region_tests_leave_a_band_without_false_matches_untested():
    shares = _shares(0.0)
    shares = shares[~((shares["subgroup"] == "MST 1-3") & (shares["outcome"] == "false match"))]
    table = region_tests(shares, seed=0, n_permutations=199)
    untested = table[table["subgroup"] == "MST 1-3"]
    assert untested["p_value"].isna().all() and (untested["n_false_match"] == 0).all()
    assert table[table["subgroup"] == "MST 8-10"]["p_holm"].notna().all()


def test_the_sentences_quote_the_tables():
    found = region_findings(region_tests(_shares(0.1), seed=0, n_permutations=999))
    assert len(found) >= 1 and found[0].startswith("in MST 8-10, false matches put 0.4") and "hair" in found[0]
    none = region_findings(region_tests(_shares(0.0), seed=0, n_permutations=999))
    assert none[0].startswith("no region's share differs") and "80 % power" in none[0]
    pairs = pd.DataFrame({"subgroup": ["MST 1-3", "MST 1-3", "MST 8-10", "MST 8-10"],
                          "outcome": ["false match", "correct rejection", "false match", "correct rejection"],
                          "pairs": [0, 1000, 30, 970], "far": 0.001, "threshold": 0.9})
    text = false_match_text(pairs)
    assert "30 imposter pairs are accepted: 30 in MST 8-10 (0.0300 of its imposter pairs)" in text
    assert "MST 1-3" not in text
