"""The table every dataset loader returns, and the helpers the loaders share.

A loader reads a dataset's annotations (a CSV, CelebA's attribute list, or the
folder and file names themselves) into a :class:`FaceTable`: one row per usable
image with its relative path, identity, integer label and protected
attributes as strings. No pixel is read here; :mod:`generator.datasets.images`
reads the images later and reports the files it cannot use.

Rules shared by every loader (applied by :func:`assemble`):

* an image path must be relative and stay inside the image root (no ``..``, no
  absolute path, no symbolic link leading out): otherwise a :class:`DataError`
  naming the file and line;
* the same image listed twice with identical values: the later row is dropped
  and listed in ``skipped``; listed twice with different values: an error naming
  the path and both lines;
* every label class must keep at least one image, else an error naming the class.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from generator.errors import DataError

__all__ = [
    "CORE_COLUMNS",
    "IMAGE_SUFFIXES",
    "SKIP_COLUMNS",
    "FaceTable",
    "assemble",
    "check_choices",
    "did_you_mean",
    "encode",
    "identity_split",
    "list_images",
    "locate",
    "match_values",
    "read_csv_checked",
    "refuse_rows",
    "resolve_inside",
    "scan_folder",
    "skip_frame",
    "stratified_subsample",
]

CORE_COLUMNS = ("image_id", "path", "identity", "label")
SKIP_COLUMNS = ("source", "reason")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class FaceTable:
    """A face dataset as a table, before any pixel is read.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per usable image, index ``0..n-1``, columns ``image_id`` (unique,
        derived from the path), ``path`` (POSIX, relative to ``root``), ``identity``
        (the subject id, or ``image_id`` when the format has none), ``label``
        (class index, ``-1`` when unlabelled), then one string column per
        protected attribute.
    label_names : tuple of str
        Class index to name; ``()`` when unlabelled.
    attributes : tuple of str
        Protected-attribute column names in display order.
    root : pathlib.Path
        The image root folder (resolved).
    has_identity : bool
        Whether ``identity`` holds real subject ids.
    skipped : pandas.DataFrame
        Rows refused at table level: ``source`` (file and line, or path), ``reason``.
    source : str
        One-line description of what was read.
    notes : tuple of str
        Repairs and other remarks for the report (e.g. spreadsheet-mangled age bins).
    """

    table: pd.DataFrame
    label_names: tuple[str, ...]
    attributes: tuple[str, ...]
    root: Path
    has_identity: bool
    skipped: pd.DataFrame
    source: str
    notes: tuple[str, ...] = ()


# --- messages ----------------------------------------------------------------

def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice (case-insensitive), or ``""``."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def check_choices(option: str, values: Iterable[str], allowed: Sequence[str]) -> None:
    """Refuse a loader option (``label``, ``attributes``) outside ``allowed``."""
    for value in values:
        if value not in allowed:
            raise DataError(f"{option} {value!r} is not available{did_you_mean(value, allowed)}; "
                            f"accepted: {', '.join(allowed)}")


def locate(file: str | Path, lines: Iterable[int]) -> pd.Series:
    """``"<file>, line <n>"`` for each line number, indexed by the line numbers."""
    lines = list(lines)
    return pd.Series([f"{file}, line {n}" for n in lines], index=lines, dtype=object)


def refuse_rows(where: pd.Series, values: pd.Series, *, column: str, accepted: Sequence[str]) -> DataError:
    """The error for rows whose ``column`` holds values outside ``accepted``.

    Names the first offending row and value, how many more there are, and the
    accepted values.
    """
    first = values.iloc[0]
    problem = "is empty" if first == "" else f"has the value {first!r}, which is not accepted"
    message = f"{where.iloc[0]}: column {column!r} {problem}"
    if len(values) > 1:
        others = ", ".join(repr(v) for v in pd.unique(values.iloc[1:])[:3])
        message += f" ({len(values) - 1} more such rows, values {others})"
    return DataError(f"{message}. Accepted: {', '.join(accepted)}")


def match_values(values: pd.Series, accepted: Sequence[str], *, column: str, where: pd.Series,
                 aliases: dict[str, str] | None = None) -> pd.Series:
    """Map values to their canonical spelling in ``accepted`` (case and surrounding spaces ignored).

    Raises
    ------
    DataError
        Naming the first row with a value that is neither accepted nor an alias.
    """
    lookup = {a.lower(): a for a in accepted} | {k.lower(): v for k, v in (aliases or {}).items()}
    canonical = values.astype(str).str.strip().str.lower().map(lookup)
    bad = canonical.isna().to_numpy()
    if bad.any():
        raise refuse_rows(where[bad], values[bad], column=column, accepted=list(accepted) + list(aliases or {}))
    return canonical


def encode(values: Iterable[str], names: Sequence[str]) -> np.ndarray:
    """Class indices of ``values`` in ``names`` (``-1`` for a value not in ``names``)."""
    return pd.Categorical(list(values), categories=list(names)).codes.astype(np.int64)


def skip_frame(rows: Iterable[tuple[str, str]] = ()) -> pd.DataFrame:
    """A ``skipped`` table (``source``, ``reason``) from ``(source, reason)`` pairs."""
    return pd.DataFrame(list(rows), columns=list(SKIP_COLUMNS), dtype=object)


# --- files -------------------------------------------------------------------

def resolve_inside(root: str | Path, relative: str | Path, *, where: str = "") -> Path:
    """The absolute path of ``relative`` under ``root``, refusing paths that leave it.

    Parameters
    ----------
    root : str or Path
        The image root folder.
    relative : str or Path
        A path as written in the annotations.
    where : str
        The file and line it comes from, for the message.

    Raises
    ------
    DataError
        If the path is empty or absolute, climbs out with ``..``, or is a symbolic
        link (or lies in a linked folder) that leads outside the root.
    """
    return Path(_resolve(os.path.realpath(root), str(relative), where, {}))


def _resolve(base: str, text: str, where: str, real_folders: dict[str, str]) -> str:
    """:func:`resolve_inside` for a resolved root ``base``; ``real_folders`` caches resolved parent folders."""
    at = f"{where}: " if where else ""
    if not text.strip():
        raise DataError(f"{at}the image path is empty")
    if text.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", text):
        raise DataError(f"{at}image path {text!r} is absolute; write it relative to the image root {base}")
    candidate = os.path.normpath(os.path.join(base, text))
    if not candidate.startswith(base + os.sep):
        raise DataError(f"{at}image path {text!r} leads outside the image root {base}")
    folder, name = os.path.split(candidate)
    if folder not in real_folders:
        real_folders[folder] = os.path.realpath(folder)
    real = os.path.realpath(candidate) if os.path.islink(candidate) else os.path.join(real_folders[folder], name)
    if not real.startswith(base + os.sep):
        raise DataError(f"{at}image path {text!r} is a symbolic link leading outside the image root {base}")
    return candidate


def list_images(root: str | Path, *, what: str) -> list[str]:
    """Sorted POSIX paths, relative to ``root``, of the image files below it (hidden files left out)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{what} {root} is not a folder")
    found = (p.relative_to(root) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return sorted(p.as_posix() for p in found if not any(part.startswith(".") for part in p.parts))


def scan_folder(root: str | Path, read: Callable[[str], dict[str, str] | str], columns: Sequence[str], *,
                what: str) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Read the labels of the image files below ``root`` from their paths.

    Parameters
    ----------
    root : str or Path
        The folder searched (see :func:`list_images`).
    read : callable
        Maps a relative POSIX path to a dict of the values of ``columns``, or to
        the reason the path cannot be read (a string).
    columns : sequence of str
        The keys ``read`` returns.
    what : str
        What the folder is, for messages.

    Returns
    -------
    records : pandas.DataFrame
        ``path`` and ``columns``, one row per readable file.
    where : list of str
        The full path of each record.
    skipped : pandas.DataFrame
        The unreadable files (``source``, ``reason``).
    """
    parsed = {path: read(path) for path in list_images(root, what=what)}
    good = {path: fields for path, fields in parsed.items() if isinstance(fields, dict)}
    skipped = skip_frame((str(Path(root) / p), reason) for p, reason in parsed.items() if isinstance(reason, str))
    records = pd.DataFrame([{"path": p, **fields} for p, fields in good.items()], columns=["path", *columns])
    return records, [str(Path(root) / p) for p in good], skipped


def read_csv_checked(path: str | Path, required: Sequence[str], *, what: str) -> pd.DataFrame:
    """Read a CSV of text values, checking that the ``required`` columns are there.

    The file is read as UTF-8 (a byte-order mark is accepted), header names and
    values are stripped of surrounding spaces, blank lines are ignored. Duplicate
    rows are not handled here but by :func:`assemble`, per image path.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    required : sequence of str
        Columns that must be present.
    what : str
        What the file is, for messages (e.g. ``"FairFace label CSV"``).

    Returns
    -------
    pandas.DataFrame
        All values as ``str``, indexed by the line number of each row in the file
        (the header is line 1).

    Raises
    ------
    DataError
        If the file is missing, empty, not UTF-8, not parseable, has rows longer
        than its header, has no data rows or lacks a required column (the message lists the columns found and the
        closest match of each missing one).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False,
                                skip_blank_lines=False, index_col=False)
    except pd.errors.ParserWarning:
        raise DataError(f"{what} {path} has rows with more values than its header line names; look for a comma "
                        f"at the end of the rows or an unquoted comma inside a value") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} {path} is empty; expected a header line naming the columns "
                        f"{', '.join(required)}, then one row per image") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{what} {path} is not a valid CSV file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    _check_columns(frame, required, f"{what} {path}")
    frame = frame.apply(lambda column: column.str.strip())
    frame = frame[(frame != "").any(axis=1)]
    if frame.empty:
        raise DataError(f"{what} {path} has a header but no rows")
    return frame


def _check_columns(frame: pd.DataFrame, required: Sequence[str], described: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    named = ", ".join(f"{c!r}{did_you_mean(c, frame.columns)}" for c in missing)
    hint = ""
    if len(frame.columns) == 1 and ";" in frame.columns[0]:
        hint = " The file seems to use ';' between values; save it with commas."
    raise DataError(f"{described} has no column{'s' * (len(missing) > 1)} {named}; columns found: "
                    f"{', '.join(repr(c) for c in frame.columns)}.{hint}")


# --- the common table ----------------------------------------------------------

def assemble(records: pd.DataFrame, where: Sequence[str], *, root: str | Path, label_names: Sequence[str],
             attributes: Sequence[str], has_identity: bool, source: str,
             skipped: pd.DataFrame | None = None, notes: Sequence[str] = ()) -> FaceTable:
    """Check and normalise a loader's rows into a :class:`FaceTable`.

    Parameters
    ----------
    records : pandas.DataFrame
        Columns ``path`` (as written), ``label`` (int), ``identity`` (when
        ``has_identity``) and one column per attribute.
    where : sequence of str
        Where each row comes from (file and line, or path), for messages.
    root, label_names, attributes, has_identity, source, notes
        As in :class:`FaceTable`.
    skipped : pandas.DataFrame, optional
        Rows the loader already refused (``source``, ``reason``).

    Raises
    ------
    DataError
        For a path outside the root, conflicting duplicate rows, an attribute
        named like a core column, no usable row, or a label class left empty.
    """
    root, attributes = Path(root).resolve(), tuple(attributes)
    _check_attribute_names(attributes, source)
    if records.empty:
        raise DataError(f"{source}: no usable image{_skip_summary(skipped)}")
    where = pd.Series(list(where), index=records.index, dtype=object)
    base, folders = str(root), {}
    paths = [_resolve(base, p, w, folders)[len(base) + 1:].replace(os.sep, "/") for p, w in zip(records["path"], where)]
    records = records.assign(path=paths, label=np.asarray(records["label"], dtype=np.int64))
    records, duplicates = _drop_duplicates(records, where, ["path", "identity", "label", *attributes], label_names)
    skipped = pd.concat([skip_frame() if skipped is None else skipped, duplicates], ignore_index=True)
    table = records.assign(image_id=_image_ids(records["path"]))
    table["identity"] = table["identity"].astype(str) if has_identity else table["image_id"]
    table = table[[*CORE_COLUMNS, *attributes]].reset_index(drop=True)
    _check_classes(table, tuple(label_names), source, skipped)
    return FaceTable(table, tuple(label_names), attributes, root, has_identity, skipped, source, tuple(notes))


def _check_attribute_names(attributes: tuple[str, ...], source: str) -> None:
    clash = [a for a in attributes if a in CORE_COLUMNS]
    if clash:
        raise DataError(f"{source}: protected attribute {clash[0]!r} has the name of a column the table "
                        f"always has ({', '.join(CORE_COLUMNS)}); rename it")


def _drop_duplicates(records: pd.DataFrame, where: pd.Series, columns: list[str],
                     label_names: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop rows repeating an earlier row of the same path; refuse differing repeats."""
    columns = [c for c in dict.fromkeys(columns) if c in records.columns]
    positions = np.arange(len(records))
    origin = pd.Series(positions).groupby(records["path"].to_numpy()).transform("min").to_numpy()
    repeat = origin != positions
    values = records[columns].to_numpy()
    differ = (values != values[origin]).any(axis=1)
    if differ.any():
        position = np.flatnonzero(differ)[0]
        first, row = records.iloc[origin[position]], records.iloc[position]
        changed = [c for c in columns if row[c] != first[c]]
        raise DataError(f"image {row['path']!r} is listed twice with different values: "
                        f"{where.iloc[origin[position]]} has {_describe(first, changed, label_names)} but "
                        f"{where.iloc[position]} has {_describe(row, changed, label_names)}; keep one of the rows")
    dropped = skip_frame((where.iloc[p], f"duplicate of {where.iloc[origin[p]]}") for p in np.flatnonzero(repeat))
    return records[~repeat], dropped


def _describe(row: pd.Series, columns: list[str], label_names: Sequence[str]) -> str:
    """``"label 'Male', race 'White'"``: the row's values in ``columns``, the label by name."""
    named = {**row, "label": label_names[row["label"]] if 0 <= row["label"] < len(label_names) else "none"}
    return ", ".join(f"{c} {named[c]!r}" for c in columns)


def _image_ids(paths: pd.Series) -> pd.Series:
    """Readable ids from the paths (suffix dropped, other characters than word, '.', '-' as '_').

    Paths whose ids would coincide get the first 8 hex digits of their SHA-1 appended.
    """
    ids = paths.str.replace(r"(?<=[^/])\.[^./]*$", "", regex=True).str.replace(r"[^\w.-]+", "_", regex=True)
    clash = ids.duplicated(keep=False)
    hashed = paths[clash].map(lambda p: hashlib.sha1(p.encode()).hexdigest()[:8])
    ids[clash] = ids[clash] + "-" + hashed
    return ids


def _skip_summary(skipped: pd.DataFrame | None) -> str:
    """``" (3 rows skipped, e.g. <first reason>)"`` or ``""``."""
    if skipped is None or skipped.empty:
        return ""
    return f" ({len(skipped)} rows skipped, e.g. {skipped['source'].iloc[0]}: {skipped['reason'].iloc[0]})"


def _check_classes(table: pd.DataFrame, label_names: tuple[str, ...], source: str, skipped: pd.DataFrame) -> None:
    after = _skip_summary(skipped)
    counts = np.bincount(table["label"][table["label"] >= 0], minlength=len(label_names))
    empty = [label_names[k] for k in np.flatnonzero(counts[:len(label_names)] == 0)]
    if empty:
        raise DataError(f"{source}: label class {', '.join(repr(e) for e in empty)} has no image{after}; "
                        f"every class of {', '.join(label_names)} needs at least one")


# --- splits and subsets ----------------------------------------------------------

def identity_split(table: pd.DataFrame | FaceTable, eval_fraction: float, seed: int) -> np.ndarray:
    """``"train"`` / ``"eval"`` per row, with no identity in both.

    A seeded permutation of the sorted identities puts ``round(eval_fraction * n)``
    of them in ``eval``; the result depends only on the set of identities, the
    fraction and the seed. Without identities (``identity == image_id``) the
    split is per image.

    Raises
    ------
    DataError
        If ``eval_fraction`` is not in (0, 1) or a split would be empty.
    """
    frame = getattr(table, "table", table)
    identities = np.unique(frame["identity"].astype(str))
    n_eval = round(eval_fraction * len(identities)) if 0 < eval_fraction < 1 else 0
    if not 0 < n_eval < len(identities):
        raise DataError(f"eval_fraction {eval_fraction} of {len(identities)} identities leaves the train or eval "
                        f"split empty; use a fraction in (0, 1) and at least two identities")
    held = np.random.default_rng(seed).permutation(identities)[:n_eval]
    return np.where(frame["identity"].astype(str).isin(held), "eval", "train").astype(object)


def stratified_subsample(table: pd.DataFrame | FaceTable, by: list[str], max_images: int,
                         seed: int) -> pd.DataFrame:
    """At most ``max_images`` rows keeping the shares of the groups formed by ``by``.

    Each group gets its proportional share (largest remainders first), and at
    least one row when there are no more groups than ``max_images``; rows within
    a group are drawn with a seeded generator. The kept rows stay in table order
    with a fresh index.

    Raises
    ------
    DataError
        If a column of ``by`` is missing or ``max_images`` is below 1.
    """
    frame = getattr(table, "table", table)
    _check_columns(frame, by, "the image table")
    if max_images < 1:
        raise DataError(f"max_images must be at least 1, got {max_images}")
    if len(frame) <= max_images:
        return frame.reset_index(drop=True)
    groups = [np.asarray(rows) for _, rows in sorted(frame.groupby(list(by), sort=True).indices.items())] \
        if by else [np.arange(len(frame))]
    rng = np.random.default_rng(seed)
    quotas = _allocate(np.array([len(g) for g in groups]), max_images)
    chosen = np.concatenate([rng.permutation(g)[:k] for g, k in zip(groups, quotas)])
    return frame.iloc[np.sort(chosen)].reset_index(drop=True)


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder quotas summing to ``total``, each at least 1 when possible, at most its size."""
    exact = sizes * total / sizes.sum()
    floor = 1 if total >= len(sizes) else 0
    quotas = np.minimum(np.maximum(np.floor(exact), floor), sizes).astype(int)
    while quotas.sum() != total:
        gap = exact - quotas
        if quotas.sum() < total:
            step = np.argmax(np.where(quotas < sizes, gap, -np.inf))
            quotas[step] += 1
        else:
            step = np.argmin(np.where(quotas > floor, gap, np.inf))
            quotas[step] -= 1
    return quotas
