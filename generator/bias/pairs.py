"""Verification pairs: read BFW's pairs table, or build BFW-style pairs from embeddings.

Balanced Faces in the Wild (Robinson et al. 2020, "Face Recognition: Too Bias,
or Not Too Bias?") scores pairs of faces: genuine pairs show the same person,
imposter pairs two people *of the same subgroup* (so that a subgroup's
imposter scores are hard negatives, not easy cross-group ones), and its five
folds are subject-disjoint. :func:`pairs_from_embeddings` builds pairs the same
way from any table of embedded faces; both functions return the table that
:func:`generator.bias.verification.verification_report` reads.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from generator.errors import ConfigError, DataError

__all__ = ["BFW_COLUMNS", "BFW_ETHNICITIES", "BFW_GENDERS", "BFW_SUBGROUPS", "PAIR_COLUMNS",
           "pairs_from_embeddings", "read_bfw_datatable"]

BFW_COLUMNS = ("fold", "p1", "p2", "label", "id1", "id2", "att1", "att2", "vgg16", "resnet50", "senet50",
               "a1", "a2", "g1", "g2", "e1", "e2")
BFW_SUBGROUPS = ("AF", "AM", "BF", "BM", "IF", "IM", "WF", "WM")
BFW_GENDERS = ("F", "M")
BFW_ETHNICITIES = ("A", "B", "I", "W")
PAIR_COLUMNS = ("p1", "p2", "id1", "id2", "label", "score", "subgroup", "fold")
_ENUMERATE_LIMIT = 2_000_000


# --------------------------------------------------------------------------- BFW

def read_bfw_datatable(path: Path, *, score: str = "resnet50") -> pd.DataFrame:
    """Read BFW's pairs table (``bfw-v0.1.5-datatable.csv``).

    Parameters
    ----------
    path
        The CSV with columns ``BFW_COLUMNS``.
    score
        Which model's cosine similarity becomes ``score``: ``vgg16``,
        ``resnet50`` or ``senet50`` (any numeric column of the file is accepted).

    Returns
    -------
    pandas.DataFrame
        ``fold, p1, p2, id1, id2, label, score, subgroup, subgroup_1,
        subgroup_2, gender, ethnicity``. ``subgroup`` is ``a1`` when both faces
        share it (BFW's imposters always do) and ``"a1-a2"`` otherwise; the same
        rule gives ``gender`` (from ``g1, g2``) and ``ethnicity`` (``e1, e2``).

    Raises
    ------
    DataError
        The file is missing or unreadable, lacks columns, has unknown subgroup,
        gender or ethnicity codes, a non-numeric score, or labels other than 0/1.
    """
    path = Path(path)
    table = _read_csv(path)
    missing = [c for c in (*BFW_COLUMNS[:6], *BFW_COLUMNS[11:]) if c not in table.columns]
    if score not in table.columns:
        missing.append(score)
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has {list(table.columns)} "
                        f"(BFW datatable columns: {', '.join(BFW_COLUMNS)})")
    for columns, accepted in ((("a1", "a2"), BFW_SUBGROUPS), (("g1", "g2"), BFW_GENDERS),
                              (("e1", "e2"), BFW_ETHNICITIES)):
        for column in columns:
            _check_codes(path, table, column, accepted)
    return _bfw_pairs(table, path=path, score=score)


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as strings (numbers converted per column later), or a DataError."""
    if not path.is_file():
        raise DataError(f"BFW datatable {path} does not exist (expected bfw-v0.1.5-datatable.csv)")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"BFW datatable {path} cannot be read as CSV: {error}") from error


def _check_codes(path: Path, table: pd.DataFrame, column: str, accepted: Sequence[str]) -> None:
    """Refuse codes outside ``accepted``, naming the file, column, row count and examples."""
    bad = ~table[column].isin(accepted)
    if bad.any():
        examples = sorted(set(table.loc[bad, column].head(100)))[:5]
        raise DataError(f"{path}: column {column!r} has {int(bad.sum())} row(s) with unknown codes "
                        f"{examples}; accepted: {', '.join(accepted)}")


def _numeric(path: Path, table: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers, refusing any that is not."""
    values = pd.to_numeric(table[column].str.strip(), errors="coerce")
    bad = values.isna()
    if bad.any():
        raise DataError(f"{path}: column {column!r} has {int(bad.sum())} row(s) that are not numbers "
                        f"(e.g. {table.loc[bad, column].iloc[0]!r})")
    return values


def _combined(first: pd.Series, second: pd.Series) -> pd.Series:
    """``first`` where both agree, else ``"first-second"``."""
    return first.where(first == second, first + "-" + second)


def _bfw_pairs(table: pd.DataFrame, *, path: Path, score: str) -> pd.DataFrame:
    """Converted columns of a checked BFW table."""
    label = _numeric(path, table, "label")
    if not label.isin([0, 1]).all():
        bad = ~label.isin([0, 1])
        raise DataError(f"{path}: column 'label' has {int(bad.sum())} row(s) other than 0 (imposter) "
                        f"and 1 (genuine), e.g. {label[bad].iloc[0]!r}")
    fold = _numeric(path, table, "fold")
    if (fold != fold.round()).any():
        raise DataError(f"{path}: column 'fold' must hold integers (BFW uses 1-5)")
    return pd.DataFrame({
        "fold": fold.astype(int), "p1": table["p1"], "p2": table["p2"], "id1": table["id1"],
        "id2": table["id2"], "label": label.astype(int), "score": _numeric(path, table, score).astype(float),
        "subgroup": _combined(table["a1"], table["a2"]), "subgroup_1": table["a1"], "subgroup_2": table["a2"],
        "gender": _combined(table["g1"], table["g2"]), "ethnicity": _combined(table["e1"], table["e2"]),
    })


# --------------------------------------------------------------------------- pairs from embeddings

def pairs_from_embeddings(table: pd.DataFrame, embeddings: np.ndarray, *, subgroup: str | Sequence[str],
                          identity: str = "identity", image_id: str = "image_id",
                          max_genuine_per_identity: int = 20, imposters_per_genuine: int = 5, seed: int = 0,
                          n_folds: int = 5) -> pd.DataFrame:
    """BFW-style verification pairs with cosine scores.

    Parameters
    ----------
    table
        One row per image, aligned with ``embeddings``: ``identity``,
        ``image_id`` and the ``subgroup`` column(s).
    embeddings
        ``(N, D)`` face embeddings (no zero rows).
    subgroup
        Column(s) whose values (joined with ``" / "``) define the subgroup; an
        identity must belong to a single subgroup.
    max_genuine_per_identity
        All same-identity pairs of an identity, or a seeded sample of this many.
    imposters_per_genuine
        Imposter pairs drawn per genuine pair in the same subgroup and fold
        (capped at the number of distinct pairs available).
    seed
        Random state of the fold assignment and both samples.
    n_folds
        Subject-disjoint folds (numbered 1..n_folds): the identities of each
        subgroup are shuffled and dealt round-robin, so every fold has a share
        of every subgroup. A pair's fold is its identities' fold; imposters are
        only drawn between identities of the same fold.

    Returns
    -------
    pandas.DataFrame
        ``PAIR_COLUMNS``, genuine pairs first, each pair once (``p1`` is the
        image earlier in ``table``).

    Raises
    ------
    DataError
        Missing columns, misaligned or zero embeddings, identities in several subgroups.
    ConfigError
        Non-positive counts.
    """
    _check_pair_options(max_genuine_per_identity, imposters_per_genuine, n_folds)
    columns = [subgroup] if isinstance(subgroup, str) else list(subgroup)
    images = _image_table(table, embeddings, columns=columns, identity=identity, image_id=image_id)
    images["fold"] = _assign_folds(images, n_folds=n_folds, rng=np.random.default_rng(seed))
    rng = np.random.default_rng([seed, 1])
    genuine = _genuine_pairs(images, max_genuine_per_identity, rng)
    imposter = _imposter_pairs(images, genuine, imposters_per_genuine, rng)
    return _scored(images, embeddings, np.concatenate([genuine, imposter]),
                   np.r_[np.ones(len(genuine), int), np.zeros(len(imposter), int)])


def _check_pair_options(max_genuine: int, per_genuine: int, n_folds: int) -> None:
    """Positive integer counts."""
    for name, value in (("max_genuine_per_identity", max_genuine), ("imposters_per_genuine", per_genuine),
                        ("n_folds", n_folds)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} = {value!r}: expected an integer >= 1")


def _image_table(table: pd.DataFrame, embeddings: np.ndarray, *, columns: list[str], identity: str,
                 image_id: str) -> pd.DataFrame:
    """Identity, image id and subgroup of each image, checked."""
    missing = [c for c in (identity, image_id, *columns) if c not in table.columns]
    if missing:
        raise DataError(f"image table lacks column(s) {missing}; it has {list(table.columns)}")
    if np.ndim(embeddings) != 2 or len(embeddings) != len(table):
        raise DataError(f"embeddings have shape {np.shape(embeddings)}; expected ({len(table)}, D), one row "
                        "per row of the image table")
    vectors = np.asarray(embeddings, dtype=float)
    if not np.isfinite(vectors).all() or (np.linalg.norm(vectors, axis=1) == 0).any():
        raise DataError("embeddings hold NaN/infinite values or all-zero rows: cosine similarity is undefined")
    images = pd.DataFrame({"identity": table[identity].astype(str).to_numpy(),
                           "image_id": table[image_id].astype(str).to_numpy(),
                           "subgroup": table[columns].astype(str).agg(" / ".join, axis=1).to_numpy()})
    spread = images.groupby("identity")["subgroup"].nunique()
    if (spread > 1).any():
        raise DataError(f"identity {spread[spread > 1].index[0]!r} appears in several subgroups of "
                        f"{columns}; each identity must belong to one subgroup")
    return images


def _assign_folds(images: pd.DataFrame, *, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold (1..n_folds) of each image via its identity, identities dealt round-robin per subgroup."""
    fold_of: dict[str, int] = {}
    people = images.drop_duplicates("identity").sort_values(["subgroup", "identity"])
    for _, ids in people.groupby("subgroup", sort=True)["identity"]:
        shuffled = ids.to_numpy()[rng.permutation(len(ids))]
        fold_of |= {person: 1 + k % n_folds for k, person in enumerate(shuffled)}
    return images["identity"].map(fold_of).to_numpy()


def _genuine_pairs(images: pd.DataFrame, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Row-index pairs ``(i, j)``, ``i < j``, of the same identity (sampled down to ``limit`` each)."""
    parts = [np.empty((0, 2), dtype=np.int64)]
    for _, rows in sorted(images.groupby("identity").indices.items()):
        first, second = np.triu_indices(len(rows), k=1)
        pairs = np.column_stack([rows[first], rows[second]])
        if len(pairs) > limit:
            pairs = pairs[np.sort(rng.choice(len(pairs), limit, replace=False))]
        parts.append(pairs)
    return np.concatenate(parts)


def _imposter_pairs(images: pd.DataFrame, genuine: np.ndarray, per_genuine: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Distinct row-index pairs of different identities within each (subgroup, fold) cell."""
    cell = images["subgroup"] + "\x00" + images["fold"].astype(str)
    wanted = cell.iloc[genuine[:, 0]].value_counts() * per_genuine if len(genuine) else pd.Series(dtype=int)
    parts = [np.empty((0, 2), dtype=np.int64)]
    for key, rows in sorted(cell.groupby(cell).indices.items()):
        ids = images["identity"].to_numpy()[rows]
        parts.append(_cell_imposters(rows, ids, int(wanted.get(key, 0)), rng))
    return np.concatenate(parts)


def _cell_imposters(rows: np.ndarray, ids: np.ndarray, wanted: int, rng: np.random.Generator) -> np.ndarray:
    """``wanted`` distinct different-identity pairs of one cell (all of them if fewer exist)."""
    same = pd.Series(ids).value_counts().to_numpy()
    available = (len(rows) * (len(rows) - 1) - int((same * (same - 1)).sum())) // 2
    wanted = min(wanted, available)
    if wanted == 0:
        return np.empty((0, 2), dtype=np.int64)
    if available <= _ENUMERATE_LIMIT or 2 * wanted > available:
        first, second = np.triu_indices(len(rows), k=1)
        keep = ids[first] != ids[second]
        first, second = first[keep], second[keep]
        chosen = np.sort(rng.choice(len(first), wanted, replace=False))
        return np.column_stack([rows[first[chosen]], rows[second[chosen]]])
    return _rejection_sample(rows, ids, wanted, rng)


def _rejection_sample(rows: np.ndarray, ids: np.ndarray, wanted: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct different-identity pairs drawn uniformly until ``wanted`` (used when enumeration is too big)."""
    found = np.empty((0, 2), dtype=np.int64)
    while len(found) < wanted:
        draw = rng.integers(0, len(rows), size=(2 * wanted, 2))
        draw = draw[ids[draw[:, 0]] != ids[draw[:, 1]]]
        draw = np.sort(draw, axis=1)
        found = np.unique(np.concatenate([found, draw]), axis=0)
    found = found[np.sort(rng.choice(len(found), wanted, replace=False))]
    return np.column_stack([rows[found[:, 0]], rows[found[:, 1]]])


def _scored(images: pd.DataFrame, embeddings: np.ndarray, pairs: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Pairs table with cosine similarities."""
    vectors = np.asarray(embeddings, dtype=float)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    first, second = pairs[:, 0], pairs[:, 1]
    column = {name: images[name].to_numpy() for name in ("image_id", "identity", "subgroup", "fold")}
    return pd.DataFrame({
        "p1": column["image_id"][first], "p2": column["image_id"][second],
        "id1": column["identity"][first], "id2": column["identity"][second], "label": labels,
        "score": np.einsum("ij,ij->i", unit[first], unit[second]),
        "subgroup": column["subgroup"][first], "fold": column["fold"][first].astype(int),
    })[list(PAIR_COLUMNS)]
