"""The only module that reads and writes lead files.

CSV is read as text (every value a string, nothing guessed), so that validation sees
exactly what the file holds; Parquet keeps its own types.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from leadml.schema import LeadDataError


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: str | os.PathLike, *, delimiter: str = ",",
               encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (as text) or Parquet file of leads, with errors that say what to fix."""
    path = Path(path)
    if not path.exists():
        raise LeadDataError(f"lead file '{path}' does not exist")
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise LeadDataError(f"'{path}' is not a readable Parquet file: {exc}") from None
    try:
        return pd.read_csv(
            path, sep=delimiter, encoding=encoding, dtype=str, keep_default_na=False,
            na_filter=False, encoding_errors="strict",
        )
    except pd.errors.EmptyDataError:
        raise LeadDataError(f"lead file '{path}' is empty: it has no header row") from None
    except UnicodeDecodeError as exc:
        raise LeadDataError(
            f"lead file '{path}' is not valid {encoding} (byte {exc.start}); set "
            "dataset.csv.encoding to the file's encoding, e.g. latin-1"
        ) from None
    except pd.errors.ParserError as exc:
        raise LeadDataError(
            f"lead file '{path}' is malformed: {exc}. Check dataset.csv.delimiter "
            f"(now {delimiter!r}) and quoting."
        ) from None


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``target`` that is renamed onto it only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are shared like any file
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV or Parquet by extension, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
