"""The write-back file: scored leads as a CRM's import file, written beside the scored file
under the same commit (:mod:`leadml.scoring.run`) and counted in the same manifest.

Each CRM's published rules (docs/writeback.md): UTF-8 without a byte-order mark, comma
delimited, one header line of field names, values quoted only where they hold a comma, a
quote or a line break, line feeds. Salesforce (Bulk API 2.0, Data Loader): the 18-character
record id, numbers with a point and no separators, dates as ``yyyy-MM-ddTHH:mm:ss.SSSZ``,
``#N/A`` to empty a field (an empty cell leaves it as it was). HubSpot: the numeric Record
ID, numbers likewise, dates as ``YYYY-MM-DD``, dropdowns by internal value; an empty cell
leaves the property as it was. Text is cut to the field's length at a reason's end, else at
a word's, with an ellipsis.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.config.writeback import BANT_STATES, LABELS, WriteBack
from leadml.data import crm_ids
from leadml.errors import LeadDataError
from leadml.rules.display import cut_text, strongest_first

KEYS = {"salesforce_id": crm_ids.salesforce_id, "hubspot_id": crm_ids.hubspot_id,
        "email": crm_ids.email}
EMPTY = {"salesforce": "#N/A", "hubspot": ""}  # what a missing value is written as


def _number(values: pd.Series, scale: float, decimals: int, empty: str) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float) * scale
    return np.array([empty if np.isnan(v) else f"{v:.{decimals}f}" for v in x], dtype=object)


def _time(values: pd.Series, preset: str, empty: str) -> np.ndarray:
    stamps = pd.to_datetime(values.astype(str), utc=True, errors="coerce")
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.000Z" if preset == "salesforce"
                              else "%Y-%m-%d")
    return text.where(stamps.notna(), empty).to_numpy(dtype=object)


class WriteBackRows:
    """Turns scored rows (leadml's machine values, the carried lead columns) into the CRM's
    rows, and counts what it left out or cut."""

    def __init__(self, spec: WriteBack):
        self.spec = spec
        self.empty = EMPTY[spec.preset]
        self.key_column = spec.key.column or "lead_id"
        self.written = 0
        self.unkeyed = 0  # scored leads whose key is not a record id of the CRM
        self.unkeyed_examples: list[str] = []
        self.cut = 0  # text values cut to text_length

    @property
    def header(self) -> list[str]:
        return [self.spec.key.field, *self.spec.fields.values()]

    def frame(self, scored: pd.DataFrame) -> pd.DataFrame:
        """The CRM's rows for ``scored`` (every value text), leads without a valid key left
        out (and counted)."""
        raw = scored[self.key_column].astype(object).where(scored[self.key_column].notna(), "")
        keys = np.array([KEYS[self.spec.key.kind](str(v)) for v in raw], dtype=object)
        valid = np.array([k is not None for k in keys], dtype=bool)
        if not valid.all():
            self.unkeyed += int((~valid).sum())
            room = 5 - len(self.unkeyed_examples)
            self.unkeyed_examples += [str(v) for v in raw[~valid][:max(room, 0)]]
        rows = scored.loc[valid]
        out = {self.spec.key.field: keys[valid]}
        for column, field in self.spec.fields.items():
            out[field] = self._values(column, rows[column])
        self.written += int(valid.sum())
        return pd.DataFrame(out, columns=self.header)

    def _values(self, column: str, values: pd.Series) -> np.ndarray:
        if column == "conversion_probability":  # percent points, one decimal
            return _number(values, 100.0, 1, self.empty)
        if column == "expected_value":
            return _number(values, 1.0, 2, self.empty)
        if column == "score":
            return _number(values, 1.0, 0, self.empty)
        if column == "scored_at":
            return _time(values, self.spec.preset, self.empty)
        text = values.astype(object).where(values.notna(), "").astype(str)
        if column == "reasons":  # what decided the label first: it must survive the cut
            text = text.map(strongest_first)
        if column == "label" or column.startswith("bant_"):
            known = LABELS if column == "label" else BANT_STATES
            text = text.map(lambda v: self.spec.values[v] if v in known else v)
        long = text.str.len() > self.spec.text_length
        if long.any():
            self.cut += int(long.sum())
            text = text.where(~long, text[long].map(
                lambda v: cut_text(v, self.spec.text_length)))
        return text.replace("", self.empty).to_numpy(dtype=object)

    def section(self, path) -> dict:
        """The manifest's account of the write-back file."""
        return {"path": str(path), "preset": self.spec.preset,
                "file": str(self.spec.source) if self.spec.source else None,
                "sha256": self.spec.sha256, "key": self.spec.key.field,
                "key_column": self.key_column, "rows": self.written,
                "unkeyed": self.unkeyed, "unkeyed_examples": self.unkeyed_examples,
                "text_cut": self.cut, "fields": dict(self.spec.fields)}


class WriteBackWriter:
    """Appends the CRM's rows to the write-back file (a run's temporary), in the CSV
    dialect both CRMs import."""

    def __init__(self, path, spec: WriteBack):
        self.path = Path(path)
        self.rows = WriteBackRows(spec)
        self._file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(self.rows.header)

    def write(self, scored: pd.DataFrame) -> None:
        self._csv.writerows(self.rows.frame(scored).itertuples(index=False, name=None))

    def finish(self) -> None:
        self.close_handles()
        if self.rows.unkeyed and not self.rows.written:
            spec = self.rows.spec
            raise LeadDataError(
                f"none of the {self.rows.unkeyed} scored leads has a {spec.preset} record id "
                f"in '{self.rows.key_column}' (e.g. {self.rows.unkeyed_examples[:3]}), so "
                f"the write-back file would update nothing: set key.column in the write-back "
                f"file to the lead file's column holding the CRM's {spec.key.field}")

    def close_handles(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class Tee:
    """The scored file's writer, and the write-back file's beside it: every scored chunk
    goes to both; the scored file's path and hash stand for the pair."""

    def __init__(self, out, writeback: WriteBackWriter):
        self.out, self.writeback = out, writeback
        self.path = out.path

    def write(self, frame: pd.DataFrame) -> None:
        self.out.write(frame)
        self.writeback.write(frame)

    def finish(self, empty: pd.DataFrame):
        try:
            self.writeback.finish()
        except BaseException:
            self.out.close_handles()  # (the run removes both temporaries)
            raise
        return self.out.finish(empty)

    def close_handles(self) -> None:
        self.out.close_handles()
        self.writeback.close_handles()

    def sha256(self) -> str:
        return self.out.sha256()
