"""The write-back file: which of a scored lead's columns go back into the CRM, under which
field names, keyed by which record id. Owned by sales ops, beside the rules file.

A preset (``salesforce``, ``hubspot``) gives every default; the file overrides what the CRM
names differently::

    preset: salesforce
    key: {column: sf_lead_id}          # the lead file's column holding the CRM record id
    fields:                            # leadml's column -> the CRM's field (API name)
      conversion_probability: Conversion_Probability__c
      label: Lead_Qualification__c

``leadml score --writeback salesforce`` takes the preset as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from leadml.config.loading import Frozen, load_yaml
from leadml.config.rules import PEOPLE_WORDS, SCORED_COLUMNS
from leadml.errors import ConfigError

PRESETS = ("salesforce", "hubspot")
LABELS = ("sales_qualified", "nurture", "disqualified")
BANT_STATES = ("met", "not_met", "unknown")


class Key(Frozen):
    """The record the CRM updates: ``column``, the lead file's column holding the CRM's
    record id (None: the model's lead id column), written under the header ``field``."""

    column: str | None = None
    field: str | None = None
    kind: Literal["salesforce_id", "hubspot_id", "email"] | None = None


class WriteBack(Frozen):
    """A CRM's import file: the ``key``, the ``fields`` to write (leadml's columns or the
    lead columns the rules carry, to the CRM's field names), the ``values`` the CRM's
    picklists (enumerations) hold for the label and the BANT states, and ``text_length``,
    the most characters a text field takes (cut at a reason's or a word's end)."""

    preset: Literal["salesforce", "hubspot"]
    key: Key = Key()
    fields: dict[str, str] | None = None
    values: dict[str, str] = Field(default_factory=dict)
    text_length: int | None = Field(None, ge=20)
    source: Path | None = Field(None, exclude=True)
    sha256: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _known_values(self) -> WriteBack:
        unknown = sorted(set(self.values) - {*LABELS, *BANT_STATES})
        if unknown:
            raise ValueError(f"values maps {unknown}; it maps the labels {list(LABELS)} and "
                             f"the BANT states {list(BANT_STATES)} to the CRM's picklist values")
        if self.fields is not None and not self.fields:
            raise ValueError("fields is empty: name at least one column to write back")
        return self

    def resolved(self) -> WriteBack:
        """Every default of the preset filled in."""
        preset = PRESET_DEFAULTS[self.preset]
        key = Key(column=self.key.column, field=self.key.field or preset["key_field"],
                  kind=self.key.kind or preset["key_kind"])
        if key.kind is None:
            key = key.model_copy(update={"kind": "email" if key.field.lower() == "email"
                                         else preset["key_kind"]})
        return self.model_copy(update={
            "key": key, "fields": self.fields or dict(preset["fields"]),
            "values": {**preset["values"], **self.values},
            "text_length": self.text_length or preset["text_length"]})

    @property
    def lead_columns(self) -> list[str]:
        """The lead file's columns this file writes: the key's, and the fields that are
        not leadml's own columns (carried from the lead file into the scored file too)."""
        own = [c for c in (self.fields or {}) if c not in SCORED_COLUMNS]
        return list(dict.fromkeys([*([self.key.column] if self.key.column else []), *own]))


#: What each CRM's import takes by default (the custom field names are suggestions: sales
#: ops create the fields, or map leadml's columns to their own names in the file).
PRESET_DEFAULTS = {
    "salesforce": {  # Data Loader or Bulk API 2.0 upsert of Lead records
        "key_field": "Id", "key_kind": "salesforce_id", "text_length": 255,
        "fields": {"conversion_probability": "Conversion_Probability__c",  # Percent(3, 1)
                   "score": "Lead_Score__c",  # Number(2, 0)
                   "grade": "Lead_Grade__c",  # Picklist A-D
                   "label": "Lead_Qualification__c",  # Picklist
                   "reasons": "Lead_Score_Reasons__c",  # Text(255)
                   "scored_at": "Lead_Scored_At__c"},  # Date/Time
        "values": dict(PEOPLE_WORDS),
    },
    "hubspot": {  # an import file of contacts (or any object keyed by Record ID)
        "key_field": "Record ID", "key_kind": "hubspot_id", "text_length": 255,
        "fields": {"conversion_probability": "leadml_conversion_probability",  # number
                   "score": "leadml_score",  # number
                   "grade": "leadml_grade",  # dropdown select: A, B, C, D
                   "label": "leadml_label",  # dropdown select (internal values)
                   "reasons": "leadml_reasons",  # single-line text
                   "scored_at": "leadml_scored_on"},  # date picker
        "values": {"sales_qualified": "sales_qualified", "nurture": "nurture",
                   "disqualified": "disqualified", "met": "met", "not_met": "not_met",
                   "unknown": "unknown"},
    },
}


def load_writeback(spec: str | os.PathLike) -> WriteBack:
    """A write-back file, or a preset by name (``salesforce``, ``hubspot``), resolved."""
    if str(spec) in PRESETS:
        return WriteBack(preset=str(spec)).resolved()
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--writeback '{spec}' is neither a preset ({', '.join(PRESETS)}) "
                          "nor a file: pass a preset name or the path of a write-back YAML "
                          "(docs/writeback.md)")
    return load_yaml(path, WriteBack, "write-back file").resolved()
