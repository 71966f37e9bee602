"""Group-level analysis of attribution maps: alignment, group means, pixel-wise tests,
region scores (FaceX), high-impact patches and the fair-vs-biased comparison.

Every function takes NumPy arrays and pandas tables and returns new ones; the
figures live in :mod:`generator.figures.analysis`.
"""
from __future__ import annotations

from generator.analysis.alignment import (
    ARCFACE_LANDMARKS,
    CANONICAL_LANDMARKS,
    alignment_transforms,
    majority_mask,
    template_pixels,
    unwarp,
    warp_to_template,
)
from generator.analysis.compare import compare_models_on_region
from generator.analysis.group_maps import (
    difference_map,
    group_means,
    normalise_maps,
    valid_images,
)
from generator.analysis.patches import crop_patches, high_impact_patches
from generator.analysis.regions import (
    LANDMARK_REGIONS,
    facex_image_scores,
    facex_region_scores,
    landmark_regions,
    region_share_summary,
    region_share_table,
)
from generator.analysis.stats import (
    PixelTestResult,
    ScalarTestResult,
    benjamini_hochberg,
    holm,
    permutation_test_maps,
    permutation_test_scalar,
)

__all__ = [
    "ARCFACE_LANDMARKS",
    "CANONICAL_LANDMARKS",
    "LANDMARK_REGIONS",
    "PixelTestResult",
    "ScalarTestResult",
    "alignment_transforms",
    "benjamini_hochberg",
    "compare_models_on_region",
    "crop_patches",
    "difference_map",
    "facex_image_scores",
    "facex_region_scores",
    "group_means",
    "high_impact_patches",
    "holm",
    "landmark_regions",
    "majority_mask",
    "normalise_maps",
    "permutation_test_maps",
    "permutation_test_scalar",
    "region_share_summary",
    "region_share_table",
    "template_pixels",
    "unwarp",
    "valid_images",
    "warp_to_template",
]
