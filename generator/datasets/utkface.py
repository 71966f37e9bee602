"""UTKFace (Zhang, Song and Qi, 2017): labels written in the file names.

Each image is named ``[age]_[gender]_[race]_[datetime].jpg`` (the aligned crops
end in ``.jpg.chip.jpg``): gender 0 male, 1 female; race 0 White, 1 Black,
2 Asian, 3 Indian, 4 Others. A few names lack a field or hold an out-of-range
code: those files are skipped and listed with the reason. The images may lie
in one folder or several (``part1/``, ``part2/`` ...) under ``root``. UTKFace has
no identities.

Zhang, Z., Song, Y. and Qi, H. (2017). Age progression/regression by conditional
adversarial autoencoder. CVPR.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from generator.datasets.fairface import AGE_BINS, GENDERS, age_group
from generator.datasets.tables import FaceTable, assemble, check_choices, encode, scan_folder

__all__ = ["RACES", "load_utkface", "parse_name"]

RACES = ("White", "Black", "Asian", "Indian", "Others")
VOCABULARY = {"gender": GENDERS, "race": RACES, "age_group": AGE_BINS}
_FIELDS = (("age", 120), ("gender", 1), ("race", 4))


def parse_name(name: str) -> dict[str, str] | str:
    """The ``gender``, ``race`` and ``age_group`` a file name encodes, or the reason it cannot be read."""
    fields = name.split(".", 1)[0].split("_")
    if len(fields) != 4:
        return f"file name has {len(fields)} of the 4 fields [age]_[gender]_[race]_[datetime]"
    for (key, top), text in zip(_FIELDS, fields):
        if not text.isdigit() or int(text) > top:
            return f"{key} field {text!r} is not a whole number from 0 to {top}"
    age, gender, race = (int(f) for f in fields[:3])
    return {"gender": ("Male", "Female")[gender], "race": RACES[race], "age_group": age_group(age)}


def load_utkface(root: str | Path, *, label: str = "gender",
                 attributes: Sequence[str] = ("race", "age_group")) -> FaceTable:
    """Read UTKFace's labels from the image file names under ``root``.

    Parameters
    ----------
    root : str or Path
        The folder holding the images (searched recursively).
    label : {"gender", "race", "age_group"}
        The task; class names :data:`~generator.datasets.fairface.GENDERS`
        (``Female``, ``Male``), :data:`RACES` or the FairFace age bins.
    attributes : sequence of {"gender", "race", "age_group"}
        Protected attributes; ``age_group`` uses the FairFace bins.

    Raises
    ------
    DataError
        If ``root`` is not a folder, no name can be read, or a label class has no image.
    """
    check_choices("UTKFace label", [label], tuple(VOCABULARY))
    check_choices("UTKFace attribute", attributes, tuple(VOCABULARY))
    records, where, skipped = scan_folder(root, lambda path: parse_name(PurePosixPath(path).name),
                                          tuple(VOCABULARY), what="UTKFace image folder")
    records["label"] = encode(records[label], VOCABULARY[label])
    return assemble(records, where, root=root, label_names=VOCABULARY[label],
                    attributes=attributes, has_identity=False, skipped=skipped,
                    source=f"UTKFace image folder {root}")
