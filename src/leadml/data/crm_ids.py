"""The record ids CRMs key their imports by, as their formats publish them.

Salesforce: a record id is 15 case-sensitive letters and digits, or the same 15 followed by
three letters or digits that encode the case of each letter (so that tools comparing ids
without case, such as spreadsheets, keep them apart). HubSpot: a record id is a positive
whole number; contacts may also be keyed by email.
"""

from __future__ import annotations

import re

_SALESFORCE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Z0-5]{3})?")
_CASE_CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_HUBSPOT = re.compile(r"[1-9][0-9]{0,17}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def salesforce_suffix(id15: str) -> str:
    """The three characters that make a 15-character Salesforce id case-safe: each encodes
    which of five characters are capital letters.

    >>> salesforce_suffix("001A0000006Vm9r")  # Salesforce's own example: 001A0000006Vm9rIAC
    'IAC'
    """
    return "".join(_CASE_CODE[sum(1 << i for i, c in enumerate(id15[k:k + 5]) if c.isupper())]
                   for k in (0, 5, 10))


def salesforce_id(text: str) -> str | None:
    """The 18-character form of a Salesforce record id, or None when ``text`` is not one
    (wrong length or characters, or 18 characters whose last three do not match the case
    of the first 15).

    >>> salesforce_id("00Q5f00000AbCdE"), salesforce_id("00Q5f00000AbCdEEAV")
    ('00Q5f00000AbCdEEAV', '00Q5f00000AbCdEEAV')
    >>> salesforce_id("00Q5f00000AbCdEAAA"), salesforce_id("L56652631")
    (None, None)
    """
    text = text.strip()
    if not _SALESFORCE.fullmatch(text):
        return None
    full = text[:15] + salesforce_suffix(text[:15])
    return full if len(text) == 15 or text == full else None


def hubspot_id(text: str) -> str | None:
    """A HubSpot record id (a positive whole number, written without separators), or None.

    >>> hubspot_id("51234567890"), hubspot_id("51,234"), hubspot_id("0")
    ('51234567890', None, None)
    """
    text = text.strip()
    return text if _HUBSPOT.fullmatch(text) else None


def email(text: str) -> str | None:
    """An email address as a key (one @, a dot in the domain, no spaces), or None.

    >>> email(" Ana.Ruiz@example.com "), email("ana@example")
    ('Ana.Ruiz@example.com', None)
    """
    text = text.strip()
    return text if _EMAIL.fullmatch(text) else None
