"""The only module that reads and writes lead files.

CSV is read as text (every value a string, nothing guessed), so that validation sees
exactly what the file holds; Parquet keeps its own types.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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


# --- streaming, for scoring ----------------------------------------------------------------

MAX_FIELD_CHARS = 100_000  # longer fields are rejected rows, not memory blow-ups
_BAD_BYTE = re.compile("[\udc80-\udcff]")


@dataclass
class Malformed:
    """A record that could not be split into the header's columns, or held bad bytes."""

    record: int  # 1-based, the header is record 0
    reason: str
    raw: str


@dataclass
class Chunk:
    start: int  # record number of the first row in ``frame``
    frame: pd.DataFrame  # well-formed rows, all values as text
    records: np.ndarray  # record number of each row in ``frame``
    malformed: list[Malformed] = field(default_factory=list)


def scan(path: str | os.PathLike, encoding: str = "utf-8") -> tuple[str, bool]:
    """sha256 of the file, and whether every byte decodes in ``encoding``, in one pass."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    clean = True
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
            if clean:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    clean = False
    return digest.hexdigest(), clean


def csv_chunks(path: str | os.PathLike, *, delimiter: str = ",", encoding: str = "utf-8",
               chunk_rows: int = 100_000, check_bytes: bool = True
               ) -> tuple[list[str], Iterator[Chunk]]:
    """The header and an iterator of chunks of a CSV file; every record lands in a chunk,
    as a row or as :class:`Malformed`. Blank lines are not records."""
    if os.path.getsize(path) == 0:
        raise LeadDataError(f"input file '{path}' is empty: it has no header row")
    csv.field_size_limit(1 << 30)
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding
    handle = open(path, newline="", encoding=enc, errors="surrogateescape")  # noqa: SIM115
    reader = csv.reader(handle, delimiter=delimiter, strict=False)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        handle.close()
        raise LeadDataError(f"input file '{path}' has no readable header row ({exc})") from None
    header = [h.strip() for h in header]
    if _BAD_BYTE.search("".join(header)):
        handle.close()
        raise LeadDataError(f"the header of '{path}' is not valid {encoding}; pass the "
                            "file's encoding with --encoding")
    width = len(header)

    def records() -> Iterator[Chunk]:
        rows: list[list[str]] = []
        numbers: list[int] = []
        bad: list[Malformed] = []
        record = 0
        start = 1
        with handle:
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:  # e.g. NUL byte or an unterminated quote at EOF
                    record += 1
                    bad.append(Malformed(record, f"unreadable record: {exc}", ""))
                    continue
                if not fields:
                    continue
                record += 1
                if len(fields) != width:
                    bad.append(Malformed(record, f"malformed row: {len(fields)} fields, the "
                                         f"header has {width}", delimiter.join(fields)))
                elif check_bytes and _BAD_BYTE.search("".join(fields)):
                    bad.append(Malformed(record, f"not valid {encoding}: undecodable bytes",
                                         delimiter.join(fields).encode(
                                             "utf-8", "surrogateescape").decode("latin-1")))
                elif max(map(len, fields)) > MAX_FIELD_CHARS:
                    bad.append(Malformed(record, f"a field is longer than {MAX_FIELD_CHARS} "
                                         "characters", delimiter.join(f[:200] for f in fields)))
                else:
                    rows.append(fields)
                    numbers.append(record)
                if len(rows) + len(bad) >= chunk_rows:
                    yield Chunk(start, pd.DataFrame(rows, columns=header, dtype=object),
                                np.asarray(numbers), bad)
                    rows, numbers, bad, start = [], [], [], record + 1
        if rows or bad:
            yield Chunk(start, pd.DataFrame(rows, columns=header, dtype=object),
                        np.asarray(numbers, dtype=int), bad)

    return header, records()


class NeedsExactReader(Exception):  # noqa: N818 (a signal to switch readers, not an error)
    """The fast reader met a record it cannot account for exactly (malformed, too long):
    the caller restarts with :func:`csv_chunks`, which numbers and keeps every record."""


def arrow_csv_chunks(path: str | os.PathLike, *, delimiter: str = ",",
                     chunk_rows: int = 100_000) -> tuple[list[str], Iterator[Chunk]]:
    """Like :func:`csv_chunks` for clean UTF-8 files, several times faster (pyarrow).

    Raises :class:`NeedsExactReader` (before yielding the chunk concerned) on the first
    malformed record or over-long field.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header, _ = csv_chunks(path, delimiter=delimiter, chunk_rows=1)
    with open(path, "rb") as handle:
        sample = handle.read(1 << 20)
    row_bytes = max(1, len(sample) // max(1, sample.count(b"\n")))
    invalid: list[str] = []

    def on_invalid(row) -> str:
        invalid.append(row.text[:200])
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=max(1 << 16, chunk_rows * row_bytes),
                                       skip_rows=1, column_names=header),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=False,
            quoted_strings_can_be_null=False),
    )

    def records() -> Iterator[Chunk]:
        start = 1
        for batch in reader:
            if invalid:
                raise NeedsExactReader(f"malformed record: {invalid[0]!r}")
            frame = batch.to_pandas()
            for col in frame.columns:
                if len(frame) and frame[col].str.len().max() > MAX_FIELD_CHARS:
                    raise NeedsExactReader(f"a field of '{col}' is over {MAX_FIELD_CHARS}")
            yield Chunk(start, frame, np.arange(start, start + len(frame)))
            start += len(frame)
        if invalid:
            raise NeedsExactReader(f"malformed record: {invalid[0]!r}")

    return header, records()


def parquet_chunks(path: str | os.PathLike, *, chunk_rows: int = 100_000
                   ) -> tuple[list[str], Iterator[Chunk]]:
    """The columns and an iterator of chunks of a Parquet file (types kept)."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:
        raise LeadDataError(f"'{path}' is not a readable Parquet file: {exc}") from None
    header = list(handle.schema_arrow.names)

    def records() -> Iterator[Chunk]:
        start = 1
        for batch in handle.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield Chunk(start, frame, np.arange(start, start + len(frame)))
            start += len(frame)

    return header, records()


class ChunkWriter:
    """Appends frames to a temporary CSV or Parquet file; :meth:`commit` renames it onto
    the target, :meth:`discard` removes it. Nothing appears at the target before commit."""

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.parquet = self.target.suffix.lower() in {".parquet", ".pq"}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp",
                                   dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self._writer = None
        self._csv = None
        self._schema = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            import pyarrow.parquet as pq

            table = self._table(frame)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.tmp, self._schema)
            self._writer.write_table(table)
        else:
            import pyarrow.csv as pacsv

            table = self._table(frame)
            if self._csv is None:
                self._csv = pacsv.CSVWriter(str(self.tmp), self._schema,
                                            write_options=pacsv.WriteOptions(
                                                quoting_style="needed"))
            self._csv.write_table(table)
        self.rows += len(frame)

    def _table(self, frame: pd.DataFrame):
        """Arrow table of ``frame`` in the schema of the first chunk (all-missing text
        columns are typed as strings, not nulls, so later chunks fit)."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._schema is None:
            self._schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type)
                                      else f for f in table.schema])
        return table.cast(self._schema)

    def commit(self, empty: pd.DataFrame) -> Path:
        """Finish and rename into place; ``empty`` gives the columns of a file with no rows."""
        if self.rows == 0 and self._writer is None and self._csv is None:
            self.write(empty)
        if self._writer is not None:
            self._writer.close()
        if self._csv is not None:
            self._csv.close()
        with open(self.tmp, "rb+") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        os.replace(self.tmp, self.target)
        return self.target

    def discard(self) -> None:
        for handle in (self._writer, self._csv):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # already failing; the temp file goes anyway
                pass
        self.tmp.unlink(missing_ok=True)


def _plain(value):
    """numpy scalars as Python numbers; anything else JSON cannot hold as text."""
    return value.item() if hasattr(value, "item") else str(value)


def write_json(data: dict, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_plain) + "\n", encoding="utf-8")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
