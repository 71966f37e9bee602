"""FairFace (Kärkkäinen and Joo, 2021): a label CSV plus image folders.

The label CSVs ``fairface_label_{train,val}.csv`` have the columns
``file,age,gender,race,service_test``, e.g. ``train/1.jpg,50-59,Male,East Asian,True``.
The images come in two paddings (``fairface-img-margin025-trainval`` and
``...margin125...``); either works: point ``root`` at the folder that holds
``train/`` and ``val/``.

Age bins that a spreadsheet program turned into dates ("3-9" shown as
``3-Sep`` or ``Sep-03``, "10-19" as ``Oct-19`` or ``2019-10-01``) are read back
as their bins, and the repair is noted; any other unknown value is refused.

Kärkkäinen, K. and Joo, J. (2021). FairFace: Face attribute dataset for balanced
race, gender, and age. WACV.
"""
from __future__ import annotations

import calendar
import re
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from generator.datasets.tables import (
    FaceTable,
    assemble,
    check_choices,
    encode,
    locate,
    match_values,
    read_csv_checked,
)

__all__ = ["AGE_BINS", "GENDERS", "RACES", "age_group", "load_fairface", "repair_age"]

GENDERS = ("Female", "Male")
RACES = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")
AGE_BINS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
VOCABULARY = {"gender": GENDERS, "race": RACES, "age": AGE_BINS}
_AGE_ALIASES = {"70+": "more than 70"}
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}


def age_group(age: int) -> str:
    """The FairFace age bin of an age in years (70 and over: ``"more than 70"``)."""
    return AGE_BINS[bisect_right((3, 10, 20, 30, 40, 50, 60, 70), age)]


def repair_age(value: str) -> str | None:
    """The age bin a spreadsheet date stands for (``"3-Sep"`` -> ``"3-9"``), or ``None``.

    A value is read as a date when it holds one month name and a number, or three
    numbers (``2019-10-01``, ``03/09/2019``); four-digit years count by their last
    two digits. The bin is the only ``"a-b"`` of :data:`AGE_BINS` made of two of
    those numbers.
    """
    words = re.findall(r"[A-Za-z]+", value)
    numbers = [int(n) for n in re.findall(r"\d+", value)]
    if words:
        month = _MONTHS.get(words[0][:3].lower())
        if len(words) != 1 or month is None or len(numbers) != 1:
            return None
        parts = [month, *numbers]
    elif len(numbers) >= 3:
        parts = numbers[:3]
    else:
        return None
    parts = {n % 100 if n >= 1000 else n for n in parts}
    found = {f"{a}-{b}" for a in parts for b in parts if a < b} & set(AGE_BINS)
    return found.pop() if len(found) == 1 else None


def load_fairface(root: str | Path, annotations: str | Path, *, label: str = "gender",
                  attributes: Sequence[str] = ("race", "age")) -> FaceTable:
    """Read a FairFace label CSV.

    Parameters
    ----------
    root : str or Path
        The folder holding ``train/`` and ``val/`` (either padding).
    annotations : str or Path
        ``fairface_label_train.csv`` or ``fairface_label_val.csv``.
    label : {"gender", "race", "age"}
        The task; class names in the fixed orders :data:`GENDERS`, :data:`RACES`,
        :data:`AGE_BINS`.
    attributes : sequence of {"gender", "race", "age"}
        Protected attributes, kept as their canonical strings.

    Returns
    -------
    FaceTable
        Without identities (FairFace has none); repairs of date-mangled ages in ``notes``.

    Raises
    ------
    DataError
        For a missing column, an unknown gender, race or age value (naming the
        line and the accepted values), or a problem :func:`assemble` refuses.
    """
    check_choices("FairFace label", [label], tuple(VOCABULARY))
    check_choices("FairFace attribute", attributes, tuple(VOCABULARY))
    what = "FairFace label CSV"
    fields = list(dict.fromkeys([label, *attributes]))
    frame = read_csv_checked(annotations, ["file", *fields], what=what)
    where, notes = locate(annotations, frame.index), []
    if "age" in fields:
        frame["age"], note = _repair_ages(frame["age"], annotations)
        notes += [note] if note else []
    values = {f: match_values(frame[f], VOCABULARY[f], column=f, where=where,
                              aliases=_AGE_ALIASES if f == "age" else None) for f in fields}
    records = pd.DataFrame({"path": frame["file"], "label": encode(values[label], VOCABULARY[label]),
                            **{a: values[a] for a in attributes}}, index=frame.index)
    return assemble(records, where, root=root, label_names=VOCABULARY[label], attributes=attributes,
                    has_identity=False, source=f"{what} {annotations}", notes=notes)


def _repair_ages(ages: pd.Series, annotations: str | Path) -> tuple[pd.Series, str]:
    """Ages with spreadsheet dates read back as bins, and a note on what was repaired (or ``""``)."""
    repaired = ages.map({value: repair_age(value) for value in pd.unique(ages)})
    changed = repaired.notna()
    if not changed.any():
        return ages, ""
    pairs = list(dict(zip(ages[changed], repaired[changed])).items())[:4]
    examples = ", ".join(f"{a!r} as {b!r}" for a, b in pairs)
    note = (f"{int(changed.sum())} age values in {annotations} looked like dates made by a spreadsheet program "
            f"and were read back as age bins ({examples})")
    return repaired.fillna(ages), note
