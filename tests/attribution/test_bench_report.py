"""The bench's report says why a method stays above its floor target."""
from __future__ import annotations

import pandas as pd

from generator.attribution.bench import ABOVE_FLOOR, TARGET_RATIO, format_report


def test_methods_above_the_target_get_a_reason_and_the_others_none():
    captum = pd.DataFrame({"method": ["captum.saliency", "captum.deeplift", "captum.smoothgrad"],
                           "ratio": [1.02, 3.3, TARGET_RATIO + 0.01]})
    report = format_report(captum, pd.DataFrame({"x": [1]}), pd.DataFrame({"y": [1]}), "header")
    reasons = report.split("Above the target, and why:")[1].split("\n\n")[0]
    assert f"captum.deeplift: {ABOVE_FLOOR['captum.deeplift']}" in reasons
    assert "captum.smoothgrad: not analysed yet" in reasons
    assert "captum.saliency" not in reasons
    within = format_report(captum.assign(ratio=1.0), pd.DataFrame({"x": [1]}), pd.DataFrame({"y": [1]}), "header")
    assert "Above the target" not in within
