"""Reading and writing lead files on this machine: CSV and Parquet, in chunks or whole.

(The Spark engine reads cluster storage through Spark itself, :mod:`leadml.scoring.spark`;
the Python API hands frames to these functions through a temporary Parquet file.)

CSV is read as text (every value a string, nothing guessed), so that validation sees
exactly what the file holds; Parquet keeps its own types.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io as _io
import json
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.errors import LeadDataError

logger = logging.getLogger(__name__)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes; of a folder of parts (Parquet as Spark writes it),
    of each data file's name and bytes in name order (files starting with . or _ are
    bookkeeping, not data)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith(
        (".", "_"))) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """A digest of a DataFrame's column names and values (for a history given in memory)."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
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
    header = csv_header(path, delimiter=delimiter, encoding=encoding)  # duplicates, empty
    try:
        if utf8(encoding):
            try:
                return _arrow_table(path, header, delimiter)
            except NeedsExactReader:
                pass  # (pandas reads it as before, or says what is wrong)
        frame = _pandas_table(path, delimiter, encoding)
    except pd.errors.EmptyDataError:
        raise LeadDataError(f"lead file '{path}' is empty: it has no header row") from None
    except UnicodeDecodeError as exc:
        raise LeadDataError(
            f"lead file '{path}' is not valid {encoding} (byte {exc.start}); set "
            "dataset.csv.encoding to the file's encoding, e.g. "
            + ("utf-16: it starts with a UTF-16 byte-order mark (and set "
               "dataset.csv.delimiter to a tab, usually)" if utf16_bom(path) else "latin-1")
        ) from None
    except pd.errors.ParserError as exc:
        raise LeadDataError(
            f"lead file '{path}' is malformed: {exc}. Check dataset.csv.delimiter "
            f"(now {delimiter!r}) and quoting."
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made the extra fields an index
        raise LeadDataError(
            f"lead file '{path}' is malformed: its first row has more fields than the "
            f"header's {len(header)} names. Check dataset.csv.delimiter (now {delimiter!r}) "
            "and quoting.")
    footer = _footer_rows(path, frame, delimiter, encoding)
    if footer:  # (pandas padded its lines with empty fields, as if they were leads)
        logger.warning(
            "'%s' ends with a report footer of %d lines, not leads, left out: %s", path,
            footer, frame.iloc[-footer:, 0].tolist()[:3])
        frame = frame.iloc[:-footer]
    return frame


def _footer_rows(path: Path, frame: pd.DataFrame, delimiter: str, encoding: str) -> int:
    """How many of the last rows of ``frame`` are a report footer (:data:`FOOTER_LINES`):
    every field but the first empty, and the file's last lines one field each."""
    lo, hi = FOOTER_LINES
    if frame.shape[1] < 2 or len(frame) < lo:
        return 0
    tail = frame.iloc[-(hi + 1):]
    empty = (tail.iloc[:, 1:] == "").all(axis=1).to_numpy()[::-1]
    k = int(np.argmin(empty)) if not empty.all() else len(empty)
    if not lo <= k <= hi:
        return 0
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 64 * 1024))
        text = handle.read().decode(encoding, errors="replace")
    lines = [line for line in text.splitlines() if line.strip()][-k:]
    fields = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]
    return k if len(lines) == k and all(len(f) == 1 for f in fields) else 0


def _pandas_table(path: Path, delimiter: str, encoding: str, **options) -> pd.DataFrame:
    return pd.read_csv(path, sep=delimiter, encoding=encoding, dtype=str,
                       keep_default_na=False, na_filter=False, encoding_errors="strict",
                       **options)


def _arrow_table(path: Path, header: list[str], delimiter: str) -> pd.DataFrame:
    """:func:`read_table` of a UTF-8 CSV by Arrow's reader, several times faster and in
    about half the memory on wide exports; the same frame as pandas reads, or
    :class:`NeedsExactReader` for anything it would read differently (a malformed row, an
    unclosed quote, invalid UTF-8, header names pandas spells otherwise)."""
    if list(_pandas_table(path, delimiter, "utf-8", nrows=0).columns) != header:
        raise NeedsExactReader("header names with spaces around them")
    # Chunks of CHUNK_BYTES: Arrow reads ahead a few chunks' worth beside the frame.
    _, chunks = arrow_csv_chunks(path, delimiter=delimiter,
                                 chunk_rows=rows_holding(path, CHUNK_BYTES, most=100_000))
    frames = [chunk.frame for chunk in chunks]
    if not frames:
        return _pandas_table(path, delimiter, "utf-8")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


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


@contextmanager
def written_together(folder: str | os.PathLike) -> Iterator[Path]:
    """A staging folder inside ``folder`` whose files replace their namesakes in
    ``folder`` together, once all are written: a job killed while writing leaves the old
    set whole, never a new file beside an old one. Stagings a killed job left are removed."""
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(".staging.*"):
        shutil.rmtree(old, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=folder))
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cells_as_json(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with dict and list cells as JSON text (a CSV cell holds a value, never a
    Python printout).

    >>> cells_as_json(pd.DataFrame({"a": [{"x": 1.5}], "b": [1]}))["a"].tolist()
    ['{"x": 1.5}']
    """
    out = frame.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, dict | list | tuple)).any():
            out[col] = out[col].map(lambda v: json.dumps(strict(v), default=_plain)
                                    if isinstance(v, dict | list | tuple) else v)
    return out


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

    def __post_init__(self) -> None:
        # Undecodable bytes (read as surrogate escapes) are shown as \xNN, never written raw.
        if _BAD_BYTE.search(self.raw):
            self.raw = self.raw.encode("utf-8", "surrogateescape").decode(
                "utf-8", "backslashreplace")


@dataclass
class Chunk:
    start: int  # record number of the first row in ``frame``
    frame: pd.DataFrame  # well-formed rows, all values as text
    records: np.ndarray  # record number of each row in ``frame``
    malformed: list[Malformed] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)  # the file's report footer (last chunk)


#: A report footer: the 2 to 10 lines of one field each that end a file, after its last
#: lead (a CRM report's "Copyright ... / Confidential Information ... / Generated By ...").
#: Its lines are rejects with :data:`FOOTER_REASON`, not counted in the reject rate (they
#: are not leads). One such line alone is a record cut short (a file truncated in its first
#: field): a malformed row.
FOOTER_LINES = (2, 10)
FOOTER_REASON = "report footer: a line of one field after the last lead, not a lead"


def input_files(path: str | os.PathLike) -> list[Path]:
    """The files behind an input: the file itself, or a folder's Parquet parts in name order."""
    path = Path(path)
    if path.is_dir():
        parts = sorted(p for p in path.rglob("*") if p.is_file() and not
                       p.name.startswith((".", "_")))
        if not parts:
            raise LeadDataError(f"input folder '{path}' holds no data files")
        return parts
    if not path.exists():
        raise LeadDataError(f"input file '{path}' does not exist; check the path (and that "
                            "tonight's export has arrived)")
    return [path]


def row_estimate(path: str | os.PathLike) -> int | None:
    """About how many records an input holds, for progress before it is read: Parquet's own
    row counts, or a CSV's size over the length of its first lines (less the header)."""
    if is_parquet(Path(path)):
        import pyarrow.parquet as pq

        try:
            return sum(pq.ParquetFile(p).metadata.num_rows for p in input_files(Path(path)))
        except Exception:  # an unreadable part: the reader says so, with its own error
            return None
    per_row = row_bytes(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    return max(round(size / per_row) - 1, 0) if per_row else 0


CHUNK_BYTES = 32 << 20  # about the input a chunk holds, by default


def rows_holding(path: str | os.PathLike, nbytes: int, *, least: int = 1_000,
                 most: int = 50_000) -> int:
    """About how many records of ``path`` hold ``nbytes``, between ``least`` and ``most``
    (``most`` when the size of a record is unknown)."""
    per_row = row_bytes(path)
    return int(min(most, max(least, nbytes // per_row))) if per_row else most


def row_bytes(path: str | os.PathLike) -> float | None:
    """About how many bytes a record takes: a CSV's first MiB over its line breaks, or the
    first thousand rows of a Parquet file as read (its stored size says little: repeated
    text is stored once). None when unknown (unreadable or empty)."""
    try:
        if is_parquet(Path(path)):
            import pyarrow.parquet as pq

            with pq.ParquetFile(input_files(Path(path))[0]) as first:
                batch = next(first.iter_batches(batch_size=1000), None)
            return batch.nbytes / batch.num_rows if batch is not None and batch.num_rows \
                else None
        with open(path, "rb") as handle:
            sample = handle.read(1 << 20)
    except Exception:  # (unreadable: the reader says so, with its own error)
        return None
    if not sample:
        return None
    return len(sample) / max(sample.count(b"\n"), 1)  # (no break: a record of 1 MiB or more)


def scan(path: str | os.PathLike, encoding: str = "utf-8", *, check_encoding: bool = True,
         stop: threading.Event | None = None) -> tuple[str, bool | None, int]:
    """sha256 of the input, whether every byte decodes in ``encoding`` (None unless
    ``check_encoding``), and the number of line breaks, in one pass. A folder of parts
    hashes each part's name and bytes. ``stop``, once set, ends the pass at the next block
    (InterruptedError): see :func:`scanning`."""
    digest = hashlib.sha256()
    clean, lines = True, 0
    root = Path(path)
    for part in input_files(root):
        if root.is_dir():
            digest.update(str(part.relative_to(root)).encode() + b"\0")
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        with open(part, "rb") as handle:
            while block := handle.read(1 << 22):
                if stop is not None and stop.is_set():
                    raise InterruptedError(f"scan of '{path}' stopped")
                digest.update(block)
                # (numpy counts a 4 MB block in 0.24 ms, bytes.count in 1.4 ms holding the
                # lock the scoring threads share; 1M leads in the run: within noise)
                lines += int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))
                if clean and check_encoding:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        clean = False
        if clean and check_encoding:
            try:  # an incomplete character at the very end is only seen here
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                clean = False
    return digest.hexdigest(), clean if check_encoding else None, lines


@contextmanager
def scanning(path: str | os.PathLike, encoding: str = "utf-8", *,
             check_encoding: bool = True) -> Iterator[Future]:
    """:func:`scan` in a thread beside the caller's work (hashing releases the GIL): the
    future of its result. Should the caller fail first, the scan stops at its next block,
    so a failing or interrupted run is not held up by the hashing of a large file."""
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadml-scan") as pool:
        future = pool.submit(scan, path, encoding, check_encoding=check_encoding, stop=stop)
        try:
            yield future
        finally:
            stop.set()


_LINE_BREAK = re.compile("\r\n|\n|\r")


def swallowed_lines(value: str, delimiter: str, width: int) -> list[str]:
    r"""The lines of other records that a field swallowed, or [] for a normal field.

    A quote that is never closed (a lead typing ``"Director``) makes a CSV parser read on
    to the next quote or the end of the file, so the records after it land inside one
    field. A real multi-line value (an address, a note) holds line breaks too; what tells
    them apart is that a swallowed line is a record: it holds a delimiter for every column.

    >>> swallowed_lines('Director\n2,x,y\n3,x,y\n', ',', 3)
    ['2,x,y', '3,x,y']
    >>> swallowed_lines('Suite 4\nMain St, Leeds', ',', 3)
    []
    """
    if "\n" not in value and "\r" not in value:
        return []
    lines = _LINE_BREAK.split(value)[1:]
    need = max(1, width - 1)
    if not any(line.count(delimiter) >= need for line in lines):
        return []
    return [line for line in lines if line]


def raw_record(fields, delimiter: str) -> str:
    """A record as it would be written back to CSV, quotes and all.

    >>> raw_record(['1', 'Head of "Growth", EMEA'], ',')
    '1,"Head of ""Growth"", EMEA"'
    """
    out = _io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(
        ["" if v is None else str(v) for v in fields])
    return out.getvalue()


def utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in {"utf-8", "utf8", "utf-8-sig"}


def _open_text(path, encoding: str):
    enc = "utf-8-sig" if utf8(encoding) else encoding
    return open(path, newline="", encoding=enc, errors="surrogateescape")


def check_header(header: list[str], path) -> list[str]:
    """Header names stripped; duplicate names are an error (which column would be read?)."""
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if "" in dupes:
        raise LeadDataError(
            f"'{path}' has {header.count('')} columns without a name (empty header cells; "
            "a spreadsheet exports its empty columns this way): delete those columns in the "
            "export, or name them")
    if dupes:
        raise LeadDataError(f"'{path}' has duplicate column names {dupes}: rename them in the "
                            "export so each column is read once")
    return header


def _spanned_lines(fields: list[str], delimiter: str, width: int) -> list[str]:
    """The physical lines of a record that an unclosed quote made of several lines, or []
    for a normal record. Either a field swallowed whole records (:func:`swallowed_lines`),
    or the record spans lines and has the wrong number of fields: its lines are then
    counted one by one, so no lead folds into another's reject."""
    spans = any("\n" in f or "\r" in f for f in fields)
    if not spans:
        return []
    if len(fields) == width and not any(swallowed_lines(f, delimiter, width) for f in fields):
        return []  # a real multi-line value (an address, a note)
    return [p for p in _LINE_BREAK.split(delimiter.join(fields)) if p] or [""]


def csv_header(path: str | os.PathLike, *, delimiter: str = ",",
               encoding: str = "utf-8") -> list[str]:
    """The header row of a CSV file, checked, without reading further."""
    if os.path.getsize(path) == 0:
        raise LeadDataError(f"input file '{path}' is empty: it has no header row")
    packed = packed_kind(path)
    if packed:
        raise LeadDataError(f"'{path}' is {packed}, not a CSV file: {PACKED_FIX[packed]}")
    csv.field_size_limit(1 << 30)
    with _open_text(path, encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=False)
        try:
            header = next(reader)
        except (StopIteration, csv.Error) as exc:
            raise LeadDataError(f"input file '{path}' has no readable header row "
                                f"({exc})") from None
        named = [h for h in header if h.strip()]
        if len(named) <= 1:  # a report's title above the table?
            _refuse_a_title(path, header, reader)
    line = delimiter.join(header)
    if re.fullmatch(r"(?i)sep=.", line):
        raise LeadDataError(
            f"the first line of '{path}' is {line!r}, a spreadsheet's hint of the delimiter, "
            "not the header: remove that line, and give the delimiter "
            f"({line[4:]!r}) to leadml (leadml score --delimiter; dataset.csv.delimiter in a "
            "training config)")
    if _BAD_BYTE.search("".join(header)):
        bom = utf16_bom(path)
        raise LeadDataError(f"the header of '{path}' is not valid {encoding}: give the "
                            "file's encoding (leadml score --encoding; dataset.csv.encoding "
                            "in a training config)"
                            + (f"; it starts with a {bom} byte-order mark: {bom.lower()}, "
                               "usually with a tab as the delimiter" if bom else ""))
    return check_header(header, path)


def _refuse_a_title(path, first: list[str], reader, lines: int = 20) -> None:
    """A first line of one name followed, within ``lines`` records, by a line of several:
    a report's title (and filters) above the table, refused with the line of the header."""
    try:
        for number, fields in enumerate(reader, start=2):
            if len([f for f in fields if f.strip()]) >= 3:
                raise LeadDataError(
                    f"the first line of '{path}' is {''.join(first)[:80]!r}, not a header: "
                    f"line {number} looks like it ({[f.strip() for f in fields][:4]} ...). "
                    "Remove the lines above the header (a report's title or filters) in the "
                    "export.")
            if number > lines:
                return
    except csv.Error:
        return


#: The first bytes of files that are not text, and what each is.
PACKED = {b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive",
          b"BZh": "bzip2-compressed", b"\xfd7zXZ\x00": "xz-compressed",
          b"\x28\xb5\x2f\xfd": "zstd-compressed",
          b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an Excel 97-2003 workbook (.xls)",
          b"PAR1": "a Parquet file"}
PACKED_FIX = {
    "a zip archive": "an Excel workbook (.xlsx) is one; save the sheet as CSV UTF-8 (or "
                     "unzip the archive) and pass that file",
    "an Excel 97-2003 workbook (.xls)": "save the sheet as CSV UTF-8 and pass that file",
    "a Parquet file": "name it *.parquet, and leadml reads it as Parquet",
}
PACKED_FIX.update({kind: f"decompress it first ({tool} FILE) and pass the CSV" for kind, tool in (
    ("gzip-compressed", "gunzip"), ("bzip2-compressed", "bunzip2"),
    ("xz-compressed", "unxz"), ("zstd-compressed", "unzstd"))})


def packed_kind(path: str | os.PathLike) -> str | None:
    """What a file that should be CSV text is instead, from its first bytes (compressed,
    a workbook, Parquet), or None."""
    with open(path, "rb") as handle:
        start = handle.read(8)
    return next((kind for magic, kind in PACKED.items() if start.startswith(magic)), None)


def utf16_bom(path: str | os.PathLike) -> str | None:
    """'UTF-16' when the file starts with a UTF-16 byte-order mark (a spreadsheet's
    "Unicode text" export), else None."""
    with open(path, "rb") as handle:
        start = handle.read(2)
    return "UTF-16" if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else None


def physical_lines(raw: str) -> list[str]:
    """The non-empty lines of a record's raw text (what a reject per line holds).

    >>> physical_lines('a,"b\\nc,d\\r\\n\\ne\\n')
    ['a,"b', 'c,d', 'e']
    """
    return [p for p in _LINE_BREAK.split(raw) if p] or [""]


def unreadable_record(raw: str, record: int, *, delimiter: str, width: int
                      ) -> list[Malformed]:
    """The rejects of a record another reader (Spark's) could not split into the header's
    fields, as :func:`csv_chunks` gives them: one per physical line when its text spans
    several (an unclosed quote swallowed the lines after it), numbered from ``record``;
    else the one reason it is malformed."""
    import csv

    pieces = physical_lines(raw)
    if len(pieces) > 1:
        return _swallowed(pieces, record)
    fields = next(csv.reader([raw], delimiter=delimiter), [])
    return _problems(fields, record, width=width, delimiter=delimiter, encoding="utf-8",
                     check_bytes=False) or [
        Malformed(record, "malformed row: its fields do not match the header (CSV reader)",
                  raw[:1000])]


def _swallowed(pieces: list[str], record: int) -> list[Malformed]:
    return [Malformed(record, f"unclosed quote: a quote runs over the next "
                      f"{len(pieces) - 1} line(s) (each rejected too); close or remove "
                      "the quote in the export", pieces[0][:1000]),
            *(Malformed(record + k, f"swallowed by the unclosed quote of record {record}",
                        line[:1000]) for k, line in enumerate(pieces[1:], start=1))]


def _problems(fields: list[str], record: int, *, width: int, delimiter: str, encoding: str,
              check_bytes: bool) -> list[Malformed]:
    """Why a record read as ``fields`` is not a lead row: nothing for a good row; the record
    and each line an unclosed quote swallowed; or the one reason it is malformed."""
    pieces = _spanned_lines(fields, delimiter, width)
    if pieces:
        return _swallowed(pieces, record)
    if len(fields) != width:
        return [Malformed(record, f"malformed row: {len(fields)} fields, the header has "
                          f"{width}", raw_record(fields, delimiter))]
    if check_bytes and _BAD_BYTE.search("".join(fields)):
        return [Malformed(record, f"not valid {encoding}: undecodable bytes; an export in "
                          "another encoding (cp1252 from Excel on Windows) is read with that "
                          "encoding (--encoding, or dataset.csv.encoding)",
                          raw_record(fields, delimiter))]
    if max(map(len, fields)) > MAX_FIELD_CHARS:
        return [Malformed(record, f"a field is longer than {MAX_FIELD_CHARS} characters",
                          raw_record([f[:200] for f in fields], delimiter))]
    return []


class _Footer:
    """One-field records held back while they may be a report footer after the last lead
    (between FOOTER_LINES of them, at the end of the file); released as malformed rows as
    soon as a record follows them."""

    def __init__(self, width: int, delimiter: str):
        self.width, self.delimiter = width, delimiter
        self.held: list[Malformed] = []
        self.text: list[str] = []
        self.too_many = False  # a run of one-field records longer than a footer

    def holds(self, fields: list[str], record: int) -> bool:
        """Whether ``fields`` is held back (a one-field record that may be a footer line)."""
        one_field = len(fields) == 1 and self.width > 1 and len(fields[0]) <= 1000 \
            and "\n" not in fields[0] and "\r" not in fields[0]
        if one_field and not self.too_many and len(self.held) < FOOTER_LINES[1]:
            self.held.append(Malformed(record, f"malformed row: 1 fields, the header has "
                                       f"{self.width}", raw_record(fields, self.delimiter)))
            self.text.append(fields[0])
            return True
        self.too_many = one_field
        return False

    def release(self, *, too_many: bool = False) -> list[Malformed]:
        """The held records, as malformed rows: a record followed them."""
        released, self.held, self.text, self.too_many = self.held, [], [], too_many
        return released

    def end(self) -> tuple[list[Malformed], list[str]]:
        """At the end of the file: (the held records' rejects, the footer's lines)."""
        if len(self.held) >= FOOTER_LINES[0]:
            return [Malformed(m.record, FOOTER_REASON, m.raw) for m in self.held], self.text
        return self.held, []


def csv_chunks(path: str | os.PathLike, *, delimiter: str = ",", encoding: str = "utf-8",
               chunk_rows: int = 100_000, check_bytes: bool = True
               ) -> tuple[list[str], Iterator[Chunk]]:
    """The header and an iterator of chunks of a CSV file; every record lands in a chunk,
    as a row or as :class:`Malformed`. Blank lines are not records. The file is opened
    only when the iterator starts."""
    header = csv_header(path, delimiter=delimiter, encoding=encoding)
    width = len(header)

    def chunk(start, rows, numbers, bad, footer=()) -> Chunk:
        return Chunk(start, pd.DataFrame(rows, columns=header, dtype=object),
                     np.asarray(numbers, dtype=int), bad, list(footer))

    def records() -> Iterator[Chunk]:
        rows: list[list[str]] = []
        numbers: list[int] = []
        bad: list[Malformed] = []
        footer = _Footer(width, delimiter)
        record, start = 0, 1
        with _open_text(path, encoding) as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=False)
            next(reader)  # the header, checked above
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:  # e.g. a NUL byte
                    record += 1
                    bad += footer.release()
                    bad.append(Malformed(record, f"unreadable record: {exc}", ""))
                    continue
                if not fields:
                    continue
                record += 1
                if footer.holds(fields, record):
                    continue
                bad += footer.release(too_many=footer.too_many)  # not the end of the file
                problems = _problems(fields, record, width=width, delimiter=delimiter,
                                     encoding=encoding, check_bytes=check_bytes)
                if problems:
                    bad += problems
                    record = problems[-1].record
                else:
                    rows.append(fields)
                    numbers.append(record)
                if len(rows) + len(bad) >= chunk_rows:
                    yield chunk(start, rows, numbers, bad)
                    rows, numbers, bad, start = [], [], [], record + 1
        held, lines = footer.end()
        bad += held
        if rows or bad or lines:
            yield chunk(start, rows, numbers, bad, lines)

    return header, records()


class NeedsExactReader(Exception):  # noqa: N818 (a signal to switch readers, not an error)
    """The fast reader met a record it cannot account for exactly (malformed, too long,
    an unclosed quote): the caller restarts with :func:`csv_chunks`, which numbers and
    keeps every record."""


MAX_BLOCK_BYTES = 1 << 26  # Arrow's block size is an int32; a row longer than a block
#                            sends the file to the exact reader instead
READ_AHEAD_BLOCKS = 32  # how many blocks Arrow's streaming CSV reader reads ahead


def arrow_csv_chunks(path: str | os.PathLike, *, delimiter: str = ",",
                     chunk_rows: int = 100_000) -> tuple[list[str], Iterator[Chunk]]:
    """Like :func:`csv_chunks` for clean UTF-8 files, several times faster (pyarrow).

    Raises :class:`NeedsExactReader` (before yielding the chunk concerned) on the first
    malformed record, over-long field, unclosed quote or anything else Arrow cannot parse.
    The Arrow reader (and its threads) exists only while the iterator runs.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    header = csv_header(path, delimiter=delimiter)
    width = len(header)
    per_row = max(1, int(row_bytes(path) or 1))
    # Arrow reads up to READ_AHEAD_BLOCKS blocks ahead of the caller: with a chunk a block,
    # a large file would hold 32 chunks of text in memory (200 MB at 50k leads a chunk).
    # Smaller blocks, gathered into chunks here, keep the read-ahead to about 4 chunks.
    block = int(min(MAX_BLOCK_BYTES,
                    max(1 << 16, 4 * chunk_rows * per_row // READ_AHEAD_BLOCKS)))
    invalid: list[str] = []

    def on_invalid(row) -> str:
        invalid.append(row.text[:200])
        return "skip"

    def swallowing(batch) -> str | None:
        """A value holding whole records (an unclosed quote), else None. A column whose
        text bytes hold no line break (one scan of Arrow's buffer) holds no such value."""
        for col in batch.columns:
            if not any(_text_bytes(chunk, b"\n\r") for chunk in col.chunks):
                continue
            broken = pc.or_(pc.match_substring(col, "\n"), pc.match_substring(col, "\r"))
            for value in col.filter(broken).to_pylist():
                if swallowed_lines(value, delimiter, width):
                    return value[:80]
        return None

    def too_long(batch) -> str | None:
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            if all(_longest_bytes(chunk) <= MAX_FIELD_CHARS for chunk in col.chunks):
                continue  # (a character is at least a byte)
            longest = pc.max(pc.utf8_length(col)).as_py()
            if longest is not None and longest > MAX_FIELD_CHARS:
                return name
        return None

    def records() -> Iterator[Chunk]:
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=block, skip_rows=1,
                                               column_names=header),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                                 invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in header}, strings_can_be_null=False,
                    quoted_strings_can_be_null=False),
            )
        except (pa.ArrowInvalid, OverflowError) as exc:
            raise NeedsExactReader(f"Arrow cannot read it: {exc}") from None

        def batches():
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, OverflowError) as exc:
                    raise NeedsExactReader(f"Arrow cannot read it: {exc}") from None
                if invalid:
                    raise NeedsExactReader(f"malformed record: {invalid[0]!r}")
                yield batch
            if invalid:
                raise NeedsExactReader(f"malformed record: {invalid[0]!r}")

        start = 1
        try:
            for table in _regrouped(batches(), chunk_rows):
                if (value := swallowing(table)) is not None:
                    raise NeedsExactReader(f"unclosed quote in {value!r}")
                if (col := too_long(table)) is not None:
                    raise NeedsExactReader(f"a field of '{col}' is over {MAX_FIELD_CHARS}")
                frame = table.to_pandas()
                yield Chunk(start, frame, np.arange(start, start + len(frame)))
                start += len(frame)
        finally:
            reader.close()

    return header, records()


def _regrouped(batches, rows: int):
    """Arrow record ``batches`` as tables of ``rows`` rows (the last one shorter), each in
    one contiguous piece."""
    import pyarrow as pa

    pending, held = [], 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
            yield table.slice(0, rows).combine_chunks()
    if held:
        yield pa.Table.from_batches(pending).combine_chunks()


def _text_bytes(strings, wanted: bytes) -> bool:
    """Whether the text buffer of an Arrow string array (the values, and perhaps bytes
    beyond a slice: never fewer) holds one of the bytes ``wanted``."""
    data = strings.buffers()[2]
    if data is None or data.size == 0:
        return False
    buffer = np.frombuffer(data, dtype=np.uint8)
    return any(bool((buffer == byte).any()) for byte in wanted)


def _large_string():
    import pyarrow as pa

    return pa.large_string()


def _longest_bytes(strings) -> int:
    """The longest value of an Arrow string array, in bytes."""
    if len(strings) == 0:
        return 0
    wide = strings.type.equals(_large_string())
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64 if wide else np.int32)
    ends = offsets[strings.offset:strings.offset + len(strings) + 1]
    return int(np.diff(ends).max())


def parquet_chunks(path: str | os.PathLike, *, chunk_rows: int = 100_000
                   ) -> tuple[list[str], Iterator[Chunk]]:
    """The columns and an iterator of chunks of a Parquet file or a folder of Parquet
    parts (read in name order), types kept. Nested columns (lists, structs) are refused."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    files = [str(f) for f in input_files(path)]
    try:
        dataset = pads.dataset(files, format="parquet")
    except (pa.ArrowException, OSError) as exc:
        raise LeadDataError(f"'{path}' is not a readable Parquet file: {exc}") from None
    schema = dataset.schema
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise LeadDataError(f"'{path}' has nested (list or struct) columns {nested}: leadml "
                            "reads flat columns; flatten or drop them in the export")
    header = check_header(list(schema.names), path)

    def records() -> Iterator[Chunk]:
        start = 1
        try:
            for batch in _parquet_batches(files, schema, chunk_rows):
                if batch.num_rows == 0:
                    continue
                frame = batch.to_pandas()
                yield Chunk(start, frame, np.arange(start, start + len(frame)))
                start += len(frame)
        except (pa.ArrowException, OSError) as exc:
            raise LeadDataError(f"'{path}' is corrupt after row {start - 1}: {exc}. Export "
                                "the file again") from None

    return header, records()


def _parquet_batches(files: list[str], schema, chunk_rows: int):
    """The parts' rows, ``chunk_rows`` at a time, in the dataset's ``schema``. A part in
    that schema is read a batch of pages at a time (Arrow's dataset scanner decodes a whole
    row group first: 2 GB for one wide 200k-lead part, against 0.3 GB); another (columns
    missing, other types) goes through the scanner, which fills and casts them."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    for name in files:
        with pq.ParquetFile(name) as part:
            if part.schema_arrow.equals(schema, check_metadata=False):
                # A reader a row group (one reader over many row groups held ~24 bytes a
                # row more, to the end: +120 MB at 5M leads), regrouped into chunks.
                yield from _regrouped((batch for group in range(part.num_row_groups)
                                       for batch in part.iter_batches(
                                           batch_size=chunk_rows, row_groups=[group],
                                           use_threads=False)), chunk_rows)
                continue
        # One batch at a time: the scanner's default read-ahead (16 batches of chunk_rows)
        # multiplied the peak memory of scoring 5M leads by 2.4.
        yield from pads.dataset([name], format="parquet", schema=schema).to_batches(
            batch_size=chunk_rows, use_threads=False, batch_readahead=1, fragment_readahead=1)


def is_parquet(path: str | os.PathLike) -> bool:
    """A Parquet file by its extension, or a folder of Parquet parts."""
    path = Path(path)
    if path.is_dir():
        return any(path.rglob("*.parquet")) or any(path.rglob("*.pq"))
    return path.suffix.lower() in {".parquet", ".pq"}


#: Starts a spreadsheet reads as a formula, and the apostrophe that escapes them (itself
#: escaped, so that :func:`spreadsheet_text` reads every value back exactly).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Text that cannot start a formula when the CSV is opened in a spreadsheet: a value
    starting with ``= + - @``, a tab or a carriage return gets a leading apostrophe, as
    OWASP recommends against CSV injection (a spreadsheet shows the value without it).
    A value starting with an apostrophe gets one too, so the escape can be undone exactly
    (:func:`spreadsheet_text`). Missing values stay missing.

    >>> spreadsheet_safe(pd.Series(["=1+1", "Job title raised it", "-2", "'t"])).tolist()
    ["'=1+1", 'Job title raised it', "'-2", "''t"]
    """
    if isinstance(values.dtype, pd.CategoricalDtype):  # escape each category once
        categories = pd.Series(values.cat.categories, dtype=object)
        safe = spreadsheet_safe(categories)
        if safe is categories:
            return values
        if safe.is_unique:
            return values.cat.rename_categories(safe.to_numpy())
        values = values.astype(object)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string":
        values = values.astype("str")  # as the writer would: then one pass in Arrow
    if isinstance(values.dtype, pd.StringDtype):
        risky = values.str.startswith(_FORMULA_START).fillna(False).to_numpy(dtype=bool)
    else:
        risky = np.array([isinstance(v, str) and v.startswith(_FORMULA_START)
                          for v in values.astype(object)], dtype=bool)
    if not risky.any():
        return values
    text = values.astype(object)
    out = text.copy()
    out[risky] = "'" + text[risky]
    return out


def spreadsheet_text(values: pd.Series) -> pd.Series:
    """The values :func:`spreadsheet_safe` escaped, as they were: one leading apostrophe
    removed (how monitoring reads the lead ids of a scored CSV back).

    >>> spreadsheet_text(pd.Series(["'+L123", "L7", "''t"])).tolist()
    ['+L123', 'L7', "'t"]
    """
    text = values.astype(object)
    quoted = np.array([isinstance(v, str) and v.startswith("'") for v in text], dtype=bool)
    if not quoted.any():
        return values
    out = text.copy()
    out[quoted] = text[quoted].str.slice(1)
    return out


class _HashedFile:
    """A file opened for writing that hashes every byte on its way in (SHA-256), so the
    manifest's ``output_sha256`` needs no second pass over the written file."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.digest = hashlib.sha256()
        self.closed = False

    def write(self, data) -> int:
        self.digest.update(data)  # (releases the GIL for blocks over 2 kB)
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._file.close()


class ChunkWriter:
    """Appends frames to one CSV or Parquet file (a run's temporary; :mod:`leadml.scoring.run`
    renames it into place). ``spreadsheet_safe`` names CSV text columns a person opens,
    escaped with :func:`spreadsheet_safe`; ``transform`` rewrites each frame first (a
    CSV in people's words: :func:`leadml.rules.display.for_people`). :meth:`sha256` is
    the finished file's hash."""

    def __init__(self, path: str | os.PathLike, *, parquet: bool,
                 spreadsheet_safe: tuple[str, ...] = (), transform=None):
        self.path = Path(path)
        self.parquet = parquet
        self.escaped = () if parquet else spreadsheet_safe
        self.transform = transform  # frame -> frame, before anything else
        self._writer = None
        self._file: _HashedFile | None = None
        self._opened = False
        self._schema = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.transform is not None:
            frame = self.transform(frame)
        if self.escaped:
            frame = frame.assign(**{c: spreadsheet_safe(frame[c]) for c in self.escaped
                                    if c in frame.columns})
        table = self._table(frame)
        if self._writer is None:
            self._opened = True
            self._file = _HashedFile(self.path)
            if self.parquet:
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self._file, self._schema)
            else:
                import pyarrow.csv as pacsv

                self._writer = pacsv.CSVWriter(self._file, self._schema,
                                               write_options=pacsv.WriteOptions(
                                                   quoting_style="needed"))
        self._writer.write_table(table)
        self.rows += len(frame)

    def _table(self, frame: pd.DataFrame):
        """Arrow table of ``frame`` in the schema of the first chunk (all-missing text
        columns are typed as strings, not nulls, so later chunks fit)."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        for i, column in enumerate(table.schema):  # categoricals: written as their text
            if pa.types.is_dictionary(column.type):
                table = table.set_column(i, column.name, table.column(i).cast(
                    column.type.value_type))
        if self._schema is None:
            self._schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type)
                                      else f for f in table.schema])
        return table.cast(self._schema)

    def finish(self, empty: pd.DataFrame) -> Path:
        """Close the file; ``empty`` gives the columns of a file with no rows."""
        if not self._opened:
            self.write(empty)
        self.close_handles()
        return self.path

    def sha256(self) -> str:
        """The SHA-256 of the bytes written (call after :meth:`finish`)."""
        assert self._file is not None and self._file.closed, "finish() first"
        return self._file.digest.hexdigest()

    def close_handles(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._writer = None
            if self._file is not None:
                self._file.close()


def _plain(value):
    """numpy scalars as Python numbers; anything else JSON cannot hold as text."""
    return value.item() if hasattr(value, "item") else str(value)


def strict(value):
    """``value`` with every number JSON cannot hold (NaN, infinities, numpy's) as null, so
    strict parsers read what leadml writes.

    >>> strict({"a": [float("nan"), 1.5], "b": float("inf")})
    {'a': [None, 1.5], 'b': None}
    """
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(data: dict) -> str:
    """Strict JSON (null, never NaN or Infinity)."""
    return json.dumps(strict(data), indent=2, default=_plain, allow_nan=False) + "\n"


def write_json(data: dict, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(data), encoding="utf-8")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
