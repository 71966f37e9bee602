"""End to end on the tiny config: pages, manifest, CSVs, site, deck, and a no-op rerun."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_pages_and_manifest(tiny_build):
    results = tiny_build.config.output.results_dir
    for page in ("dataset.md", "models.md", "bias-classification.md", "bias-verification.md", "attribution.md",
                 "evaluation.md", "analysis.md", "reproducibility.md"):
        assert (results / page).is_file(), page
    manifest = json.loads((results / "manifest.json").read_text())
    figure_ids = {f["id"] for f in manifest["figures"]}
    table_ids = {t["id"] for t in manifest["tables"]}
    assert {"fig-dataset-samples", "fig-dataset-masks", "fig-models-training-curves",
            "fig-models-accuracy-by-skin-tone"} <= figure_ids
    assert {"tab-dataset-counts", "tab-models-accuracy-by-skin-tone"} <= table_ids
    assert {"fig-gallery-fair-captum", "fig-gallery-biased-xplique", "fig-evaluation-summary", "fig-sanity",
            "fig-analysis-fair-vs-biased", "fig-analysis-means-captum-integrated-gradients"} <= figure_ids
    assert {"tab-evaluation-summary", "tab-evaluation-ranking", "tab-sanity", "tab-agreement",
            "tab-analysis-fair-vs-biased", "tab-analysis-region-shares"} <= table_ids
    assert {"tab-verification-tar-pairs-table", "fig-verification-det-pairs-table"} <= figure_ids | table_ids
    for model in ("fair", "biased"):
        assert {f"fig-bias-rates-{model}"} <= figure_ids
        assert {f"tab-bias-rates-{model}", f"tab-bias-disparities-{model}"} <= table_ids
        # on synthetic data the face-recognition models are audited, not the classifiers' pooled features
        assert f"tab-verification-tar-{model}" not in table_ids
    for model in ("fr-balanced", "fr-skewed"):
        assert {f"fig-verification-roc-{model}", f"fig-verification-det-{model}",
                f"fig-verification-fpr-inflation-{model}", f"fig-verification-rank1-{model}"} <= figure_ids
        assert {f"tab-verification-tar-{model}", f"tab-verification-fpr-{model}"} <= table_ids
        # explaining verification: the decided pairs, their mean maps and region tests, and a gallery per band
        assert {f"tab-verification-maps-pairs-{model}", f"tab-verification-maps-regions-{model}"} <= table_ids
        assert f"fig-verification-maps-means-{model}" in figure_ids
        assert any(f.startswith(f"fig-verification-gallery-{model}-mst-") for f in figure_ids)
    verification = (results / "bias-verification.md").read_text()
    assert "## Face-recognition model fr-balanced" in verification and "- **fr-skewed**" in verification
    assert "## Explaining verification decisions" in verification and "### Similarity maps of fr-skewed" in verification
    pairs = pd.read_csv(results / "tables/tab-verification-maps-pairs-fr-skewed.csv")
    assert (pairs["explained"] <= pairs["pairs"]).all() and (pairs["explained"] <= 3).all()
    assert set(pairs["outcome"]) <= {"match", "false non-match", "false match", "correct rejection"}
    for entry in manifest["figures"]:
        assert set(entry["files"]) == {"png", "svg", "pdf"}
        assert entry["caption"] and entry["title"] and entry["alt"]
        for path in entry["files"].values():
            assert (results / path).stat().st_size > 1000, path
        page = (results / entry["page"]).read_text()
        assert f'id="{entry["id"]}"' in page, f"{entry['id']} not shown on {entry['page']}"
    assert manifest["meta"]["models"].keys() == {"fair", "biased"}


def test_tables_are_csv_and_consistent(tiny_build):
    results = tiny_build.config.output.results_dir
    manifest = json.loads((results / "manifest.json").read_text())
    for entry in manifest["tables"]:
        frame = pd.read_csv(results / entry["files"]["csv"])
        assert list(frame.columns) == entry["columns"] and len(frame) == entry["rows"] > 0
    counts = pd.read_csv(results / "tables/tab-dataset-counts.csv")
    synthetic = tiny_build.config.dataset.synthetic
    expected = sum(synthetic.identities.values()) * synthetic.images_per_identity
    assert counts["images"].sum() == expected
    accuracy = pd.read_csv(results / "tables/tab-models-accuracy-by-skin-tone.csv")
    overall = accuracy[accuracy["skin_tone"] == "all"]
    assert set(overall["model"]) == {"fair", "biased"}
    assert (overall["n"] == synthetic.identities["eval"] * synthetic.images_per_identity).all()
    assert ((accuracy["ci_low"] <= accuracy["accuracy"] + 1e-12)
            & (accuracy["accuracy"] <= accuracy["ci_high"] + 1e-12)).all()


def test_bias_tables_agree_with_predictions(tiny_build):
    """The rates table's overall accuracy equals the accuracy table's, computed by separate code."""
    results = tiny_build.config.output.results_dir
    accuracy = pd.read_csv(results / "tables/tab-models-accuracy-by-skin-tone.csv")
    for model in ("fair", "biased"):
        rates = pd.read_csv(results / f"tables/tab-bias-rates-{model}.csv")
        overall = rates[(rates["group"] == "all") & (rates["metric"] == "accuracy")]["value"].item()
        expected = accuracy[(accuracy["model"] == model) & (accuracy["skin_tone"] == "all")]["accuracy"].item()
        assert overall == pytest.approx(expected, abs=1e-12)
        disparities = pd.read_csv(results / f"tables/tab-bias-disparities-{model}.csv")
        assert set(disparities["metric"]) == {"demographic_parity", "equal_opportunity", "equalized_odds"}


def test_explanation_scores_are_consistent(tiny_build):
    """Per-sample scores: shares in [0, 1] summing with the rest to at most 1; sanity flags Guided Backprop."""
    results = tiny_build.config.output.results_dir
    scores = pd.read_csv(results / "tables/tab-evaluation-per-sample.csv")
    assert set(scores["method"]) == set(tiny_build.config.attribution.methods)
    shares = scores[["share_face", "share_background", "share_cue"]]
    assert ((shares >= -1e-9) & (shares <= 1 + 1e-9)).all().all()
    assert (shares.sum(axis=1) <= 1 + 1e-9).all()
    assert scores["deletion_auc"].between(0, 1).all() and scores["insertion_auc"].between(0, 1).all()
    regions = pd.read_csv(results / "tables/tab-analysis-region-shares.csv")
    assert regions["share"].between(0, 1).all()


def test_site_and_deck(tiny_build, site_dir, deck_dir):
    for page in ("index.html", "results/dataset.html", "results/models.html",
                 "results/reproducibility.html", "results/manifest.json",
                 "results/figures/fig-dataset-samples.svg", "slides/index.html"):
        assert (site_dir / page).is_file(), page
    models_html = (site_dir / "results/models.html").read_text()
    assert "fig-models-accuracy-by-skin-tone.png" in models_html
    assert "tables/tab-models-accuracy-by-skin-tone.csv" in models_html
    deck = (deck_dir / "index.html").read_text()
    assert deck.count("<section") >= 8
    assert "Tiny &lt;b&gt;audit&lt;/b&gt;" in deck, "config strings must be escaped in the deck"
    assert "<b>audit</b>" not in deck
    import re

    shown = re.findall(r'<img class="deck-figure" src="([^"]+)"', deck)
    assert "figures/slide-dataset-samples.png" in shown and "figures/slide-models-accuracy-by-skin-tone.png" in shown
    for src in shown:  # every figure redrawn for the slide, and nothing else left in the folder
        assert (deck_dir / src).is_file(), src
    assert sorted(p.name for p in (deck_dir / "figures").glob("*.png")) == sorted({Path(s).name for s in shown})
    # the takeaway under the accuracy figure quotes the table's numbers
    frame = pd.read_csv(tiny_build.result.results_dir / "tables" / "tab-models-accuracy-by-skin-tone.csv")
    takeaway = re.search(r'slide-models-accuracy-by-skin-tone.png"[^>]*><p class="deck-takeaway">([^<]+)</p>', deck)
    assert takeaway
    for model, sub in frame[frame["skin_tone"] != "all"].groupby("model"):
        best, worst = sub.loc[sub["accuracy"].idxmax()], sub.loc[sub["accuracy"].idxmin()]
        assert (f"{model}: {best.accuracy:.2f} ({best.skin_tone}) to {worst.accuracy:.2f} ({worst.skin_tone})"
                in takeaway[1])


def test_the_profile_splits_the_explanations_stage(tiny_build):
    from generator.attribution.bench import stage_profile
    from generator.pipeline.build import PROFILE

    cache = tiny_build.config.output.cache_dir
    profile = json.loads((cache / PROFILE).read_text())
    parts = profile["explanations"]
    assert {"maps", "evaluation metrics", "sanity checks", "cross-library agreement"} <= set(parts)
    assert all(seconds >= 0 for seconds in parts.values())
    assert sum(parts.values()) <= profile["seconds"]["explanations"] + 1e-6  # parts of the stage, not more
    text = stage_profile(str(cache))
    assert "    maps" in text and "    evaluation metrics" in text


def test_unchanged_rerun_recomputes_nothing(tiny_build):
    from generator.pipeline.build import build

    out = tiny_build.config.output
    before = {p: p.stat().st_mtime_ns for p in [*out.cache_dir.rglob("*"), *out.results_dir.rglob("*"),
                                                  *out.site_dir.rglob("*")] if p.is_file()}
    result = build(tiny_build.config, site=True)
    after = {p: p.stat().st_mtime_ns for p in [*out.cache_dir.rglob("*"), *out.results_dir.rglob("*"),
                                                 *out.site_dir.rglob("*")] if p.is_file()}
    assert after == before, "an unchanged rerun must not write any file"
    assert result.timings["models"] < 5.0, result.timings
