"""What a column's name suggests it holds: an id, the creation time, an auto-number, the
outcome, a later date, words, or a field sales fills in during follow-up. Names only propose
(``leadml config init``) or support what the values show (the audit); they never decide
alone.
"""

from __future__ import annotations

import re

ORDERED = 0.9  # |rank correlation with the rows| from which a column follows the file order
MAX_SEQUENCE_SPREAD = 20  # an auto-number skips a few numbers per lead, random ids millions


def named(*words: str) -> re.Pattern:
    """Names holding one of ``words`` as a word (``lead_status``, ``Lead Status``; not
    ``poutcome``)."""
    return re.compile(rf"(?:^|[^a-z])(?:{'|'.join(words)})(?:$|[^a-z])", re.IGNORECASE)


#: An outcome, or a stage reached later.
OUTCOME_NAME = named("converted", "conversion", "convert", "won", "outcome", "result",
                     "closed", "became", "status", "stage", "y", "target", "label",
                     "subscribed")
#: When a lead converted.
CONVERTED_AT_NAME = named("converted", "conversion", "won", "became", "customer")
ID_NAME = named("id", "number", "key", "record", "uuid", "guid")
#: An auto-number: the CRM counts leads as they are created (Salesforce's "Lead Number",
#: "Record #", "Serial No").
SEQUENCE_NAME = re.compile(r"(number|\bno\b|\bnr\b|#|serial|sequence|auto|counter|index)",
                           re.IGNORECASE)
#: When a lead was created.
CREATED_NAME = named("created?", "creation", "submitted", "added", "first", "signed up",
                     "signup")
#: A date set after creation.
LATER_DATE_NAME = named("last", "latest", "modified", "updated", "closed?", "activity",
                        "next", "converted", "won", "became")
#: Words a person typed (a job title), when there are many distinct values.
TEXT_NAME = named("title", "role", "position", "designation", "occupation")
#: Fields sales fills in, or the CRM updates, while a lead is worked (the audit's
#: leadml.data.leakage.STATE_NAMES, with free-text notes): their value at export time is not
#: the value the lead arrived with.
FOLLOW_UP_NAME = named("last", "latest", "rating", "quality", "profile", "score",
                       "activity", "assigned", "owner", "disposition", "notable", "tags?",
                       "notes?", "comments?", "description", "remarks?", "summary",
                       "reason", "lost")
