"""Evaluation of attribution maps: faithfulness, robustness, complexity, sanity,
localisation and agreement, each returning per-sample values, plus their summaries.

Every function takes plain callables (``ProbFn``, ``ExplainFn``) and NumPy
arrays, so it serves any attribution engine and either framework.
"""
from __future__ import annotations

from generator.evaluation.agreement import completeness_gap, map_agreement
from generator.evaluation.complexity import complexity, sparseness
from generator.evaluation.faithfulness import (
    Deletion,
    Insertion,
    MuFidelity,
    ProbFn,
    baseline_images,
    deletion_auc,
    infidelity,
    insertion_auc,
    mu_fidelity,
)
from generator.evaluation.localisation import mass_on, pointing_game, region_shares
from generator.evaluation.robustness import ExplainFn, max_sensitivity
from generator.evaluation.sanity import cascading_randomisation, sanity_summary
from generator.evaluation.summary import rank_methods, summarise

__all__ = [
    "Deletion",
    "ExplainFn",
    "Insertion",
    "MuFidelity",
    "ProbFn",
    "baseline_images",
    "cascading_randomisation",
    "completeness_gap",
    "complexity",
    "deletion_auc",
    "infidelity",
    "insertion_auc",
    "map_agreement",
    "mass_on",
    "max_sensitivity",
    "mu_fidelity",
    "pointing_game",
    "rank_methods",
    "region_shares",
    "sanity_summary",
    "sparseness",
    "summarise",
]
