"""Balanced Faces in the Wild (Robinson et al., 2020): labels given by the folders.

The aligned crops lie at ``{asian,black,indian,white}_{females,males}/<id>/<img>.jpg``
under ``root`` (``bfw-cropped-aligned``). The identity is ``<group>/<id>``, so the
same subject folder name in two groups names two people. Files in another
folder, or not inside a subject folder, are skipped with the reason.

Robinson, J. P., Livitz, G., Henon, Y., Qin, C., Fu, Y. and Timoner, S. (2020).
Face recognition: too bias, or not too bias? CVPR Workshops.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from generator.datasets.fairface import GENDERS
from generator.datasets.tables import FaceTable, assemble, check_choices, encode, scan_folder

__all__ = ["ETHNICITIES", "GROUP_FOLDERS", "load_bfw"]

ETHNICITIES = ("Asian", "Black", "Indian", "White")
GROUP_FOLDERS = tuple(f"{e.lower()}_{g.lower()}s" for e in ETHNICITIES for g in GENDERS)
VOCABULARY = {"gender": GENDERS, "ethnicity": ETHNICITIES}
_GROUP = re.compile(r"(asian|black|indian|white)_(female|male)s", re.IGNORECASE)


def _read_path(path: str) -> dict[str, str] | str:
    """Identity, gender and ethnicity from ``<group>/<id>/<image>``, or the reason they cannot be read."""
    parts = path.split("/")
    if len(parts) != 3:
        return "not at <group>/<subject>/<image>; point the root at the folder holding asian_females/ etc."
    group = _GROUP.fullmatch(parts[0])
    if group is None:
        return f"folder {parts[0]!r} is not one of {', '.join(GROUP_FOLDERS)}"
    return {"identity": f"{parts[0]}/{parts[1]}", "ethnicity": group[1].capitalize(),
            "gender": group[2].capitalize()}


def load_bfw(root: str | Path, *, label: str = "gender", attributes: Sequence[str] = ("ethnicity",)) -> FaceTable:
    """Read BFW's faces from its folder layout.

    Parameters
    ----------
    root : str or Path
        ``bfw-cropped-aligned``: the folder holding ``asian_females/`` ... ``white_males/``.
    label : {"gender", "ethnicity"}
        The task; class names ``("Female", "Male")`` or :data:`ETHNICITIES`.
    attributes : sequence of {"gender", "ethnicity"}
        Protected attributes.

    Raises
    ------
    DataError
        If ``root`` is not a folder, no file lies in a known group folder, or a
        label class has no image.
    """
    check_choices("BFW label", [label], tuple(VOCABULARY))
    check_choices("BFW attribute", attributes, tuple(VOCABULARY))
    records, where, skipped = scan_folder(root, _read_path, ("identity", *VOCABULARY), what="BFW image folder")
    records["label"] = encode(records[label], VOCABULARY[label])
    return assemble(records, where, root=root, label_names=VOCABULARY[label],
                    attributes=attributes, has_identity=True, skipped=skipped, source=f"BFW image folder {root}")
