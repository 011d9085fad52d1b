"""The BANT rules file: which columns carry Budget, Authority, Need and Timeline, what
meets each, and the label policy (grades, capacity, value). Sales ops edit it without
retraining; scoring outputs name its hash."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from leadml.config.loading import Frozen, load_yaml


class BudgetRule(Frozen):
    """Met when the stated budget is at least ``min``; below ``disqualify_below`` is a hard
    disqualifier; missing is unknown."""

    column: str
    min: float = Field(ge=0)
    disqualify_below: float | None = Field(None, ge=0)


class AuthorityRule(Frozen):
    """Regular expressions (case-insensitive) on any text or categorical column (a job
    title, an occupation, a seniority field), after dots are removed so that "V.P." reads
    as "VP"; ``met_values`` and ``disqualify_values`` list exact values (case-insensitive)
    beside them. Disqualifying wins over met."""

    column: str
    met: tuple[str, ...] = ()
    disqualify: tuple[str, ...] = ()
    met_values: tuple[str, ...] = ()
    disqualify_values: tuple[str, ...] = ()


class NeedRule(Frozen):
    """Value lists on any categorical column that says what the lead needs (compared
    case-insensitively), and regular expressions (``met_patterns``,
    ``disqualify_patterns``) beside them; other stated values count as ``otherwise``."""

    column: str
    met: tuple[str, ...] = ()
    disqualify: tuple[str, ...] = ()
    met_patterns: tuple[str, ...] = ()
    disqualify_patterns: tuple[str, ...] = ()
    otherwise: Literal["not_met", "unknown"] = "not_met"


class TimelineRule(Frozen):
    """Met when the parsed timeline is within ``max_months``; "no plans" and the like are
    hard disqualifiers when ``disqualify_no_plans`` is set; unparseable text is unknown."""

    column: str
    max_months: float = Field(gt=0)
    disqualify_no_plans: bool = True


class SalesQualified(Frozen):
    """Who is handed to sales: leads meeting ``min_criteria_met`` BANT criteria and every
    cut-off given (``min_probability``, ``min_expected_value``), then, when a capacity is
    set, only the best ``capacity`` leads of the run (or ``capacity_share`` of its scored
    leads) by ``rank_by``, ties broken by lead id; the rest are nurture."""

    min_probability: float | None = Field(None, ge=0, le=1)
    min_criteria_met: int = Field(0, ge=0, le=4)
    min_expected_value: float | None = None
    capacity: int | None = Field(None, ge=0)
    capacity_share: float | None = Field(None, gt=0, le=1)
    rank_by: Literal["probability", "expected_value"] = "probability"
    min_fit_grade: Literal["A", "B", "C"] | None = None  # needs the rules' axes

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesQualified:
        if self.capacity is not None and self.capacity_share is not None:
            raise ValueError("give capacity (leads per scoring run) or capacity_share (a "
                             "share of the run's scored leads), not both")
        if all(getattr(self, k) is None for k in ("min_probability", "min_expected_value",
                                                  "capacity", "capacity_share")):
            raise ValueError("say how a lead becomes sales-qualified: set min_probability, "
                             "min_expected_value, capacity or capacity_share")
        return self

    @property
    def by_capacity(self) -> bool:
        return self.capacity is not None or self.capacity_share is not None


class LabelPolicy(Frozen):
    """Precedence: (1) any hard disqualifier -> disqualified; (2) probability below
    ``disqualify_below_probability`` -> disqualified; (3) at least ``min_criteria_met``
    BANT criteria met and every cut-off of ``sales_qualified`` passed -> sales_qualified,
    as far as the capacity allows; (4) otherwise nurture."""

    sales_qualified: SalesQualified
    disqualify_below_probability: float | None = Field(None, ge=0, le=1)
    #: fit x engagement cells whose leads are disqualified (``D1``: engaged, but outside
    #: the customer profile); needs the rules' axes
    disqualify_cells: list[Annotated[str, StringConstraints(pattern=r"^[A-D][1-4]$")]] = \
        Field(default_factory=list)


class Value(Frozen):
    """What a converted lead is worth, for expected value = probability x value - cost:
    a deal-value ``column`` of the lead file, a ``default`` (the value of every lead, or
    of a lead whose column is blank), and the ``cost_per_contact`` of working a lead."""

    column: str | None = None
    default: float | None = Field(None, ge=0)
    cost_per_contact: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _some_value(self) -> Value:
        if self.column is None and self.default is None:
            raise ValueError("value needs a column (the deal value of each lead) or a "
                             "default (one value for every lead), or both")
        return self


class Grades(Frozen):
    """A to D. ``probability``: lower bounds on the probability. ``share``: the shares of
    leads graded A, B and C in the model's newest (test) window, turned into fixed
    probability cut-offs when the model is loaded, so a grade means the same every night."""

    method: Literal["probability", "share"] = "probability"
    A: float = Field(0.40, gt=0, lt=1)
    B: float = Field(0.20, gt=0, lt=1)
    C: float = Field(0.08, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Grades:
        if self.method == "probability" and not self.A > self.B > self.C:
            raise ValueError(f"probability cut-offs must fall from A to C, got A={self.A}, "
                             f"B={self.B}, C={self.C}")
        if self.method == "share" and self.A + self.B + self.C >= 1:
            raise ValueError("shares of A, B and C must leave some leads for D")
        return self


class Axes(Frozen):
    """Fit and engagement: which of the model's fields describe the ideal customer profile
    (``fit``: industry, size, role, budget) and which the lead's actions (``engagement``:
    visits, opens, forms, meetings). Each lead's ``fit_points`` and ``engagement_points`` are
    the sums of those fields' reason points (so the typical lead's probability, the two, and
    the other fields' points add up to the lead's). ``fit_grades`` (A, B, C: the points at or
    above which a lead has that grade, D below) and ``engagement_levels`` (1, 2, 3 likewise,
    4 below) cut what the axis' fields alone would add to a typical lead: with ``method:
    points`` (default) in probability points (on the sample, the defaults make about a
    quarter of the leads A, and of the leads 1); with ``method: share`` as the shares of the
    model's test window in A, B and C (1, 2 and 3), turned into points once when the model
    is loaded (from the shares its training logged), so a grade means the same every night.
    A field in neither is reported as other."""

    fit: list[str]
    engagement: list[str]
    method: Literal["points", "share"] = "points"
    fit_grades: dict[Literal["A", "B", "C"], float] = Field(
        default_factory=lambda: {"A": 5.0, "B": 0.0, "C": -4.0})
    engagement_levels: dict[Literal[1, 2, 3], float] = Field(
        default_factory=lambda: {1: 5.0, 2: 1.5, 3: 0.0})
    #: share cut-offs as points, for one model (:meth:`with_points`); None until then
    _points: tuple[tuple[float, float, float], tuple[float, float, float]] | None = \
        PrivateAttr(default=None)

    def with_points(self, fit: list[float], engagement: list[float]) -> Axes:
        """These share cut-offs with the points they are for one model: the fit grades' and
        the engagement levels' lower bounds, from the shares of its test window."""
        out = self.model_copy()
        out._points = (tuple(map(float, fit)), tuple(map(float, engagement)))
        return out

    def cutoffs(self) -> tuple[list[float], list[float]]:
        """The lower bounds of A, B, C and of 1, 2, 3, in probability points."""
        if self.method == "points":
            return ([self.fit_grades[k] for k in ("A", "B", "C")],
                    [self.engagement_levels[k] for k in (1, 2, 3)])
        if self._points is None:
            raise ValueError("axes with method share are cut on a model's test window: "
                             "load them with the model (leadml.registry.axes_in_points)")
        return list(self._points[0]), list(self._points[1])

    @model_validator(mode="after")
    def _apart(self) -> Axes:
        both = sorted(set(self.fit) & set(self.engagement))
        if both:
            raise ValueError(f"axes: {both} are in both fit and engagement; a field belongs "
                             "to one axis (or to neither)")
        if not self.fit or not self.engagement:
            raise ValueError("axes needs at least one fit field and one engagement field")
        for name, cuts, keys in (("fit_grades", self.fit_grades, ("A", "B", "C")),
                                 ("engagement_levels", self.engagement_levels, (1, 2, 3))):
            if sorted(cuts, key=str) != sorted(keys, key=str):
                raise ValueError(f"axes.{name} needs {list(keys)}, got {list(cuts)}")
            values = [cuts[k] for k in keys]
            if self.method == "share":
                if min(values) <= 0 or sum(values) >= 1:
                    raise ValueError(f"axes.{name} with method share are the shares of "
                                     f"{list(keys)}, each above 0 and together below 1 "
                                     f"(the rest are {'D' if name == 'fit_grades' else 4}): "
                                     f"{values}")
            elif not values[0] > values[1] > values[2]:
                raise ValueError(f"axes.{name} must fall from {keys[0]} to {keys[2]}: {values}")
        return self

    @property
    def fields(self) -> list[str]:
        return [*self.fit, *self.engagement]


#: The scored file's own columns, which a carried lead column may not shadow.
SCORED_COLUMNS = ("lead_id", "conversion_probability", "expected_value", "score", "grade",
                  "fit_points", "engagement_points", "fit_grade", "engagement_level",
                  "bant_budget", "bant_authority", "bant_need", "bant_timeline", "label",
                  "reasons", "model_name", "model_version", "rules_version", "scored_at")


#: The words a salesperson reads for the labels and BANT states (``output.style: people``
#: and the Salesforce write-back's picklist values).
PEOPLE_WORDS = {"sales_qualified": "Sales-qualified", "nurture": "Nurture",
                "disqualified": "Disqualified", "met": "Met", "not_met": "Not met",
                "unknown": "Unknown"}


class Output(Frozen):
    """What the scored file carries beside leadml's columns, and how a scored CSV reads.

    ``carry``: the lead file's own columns (name, company, owner, email, the CRM's record
    id) copied after ``lead_id``, as read, so sales see who a lead is; never read by the
    model or the rules. ``style``: ``machine`` (the default: the values of the scored-lead
    contract, for loaders) or ``people``: in a CSV, the labels and BANT states in ``words``,
    the probability as a percent with one decimal, and the reasons cut to
    ``reasons_length`` characters (default 255: a CRM text field), the strongest first;
    ``full_reasons`` adds the whole list as ``reasons_full``. Parquet and the Python API
    always hold the machine values. ``fields``: the names the reasons give the model's
    fields (``job_title: Title``), in every style (default: the column name in words)."""

    carry: list[str] = Field(default_factory=list)
    style: Literal["machine", "people"] = "machine"
    words: dict[str, str] = Field(default_factory=dict)
    reasons_length: int | None = Field(None, ge=40)
    full_reasons: bool = False
    fields: dict[str, str] = Field(default_factory=dict)  # display names in the reasons

    @property
    def people_words(self) -> dict[str, str]:
        return {**PEOPLE_WORDS, **self.words}

    @property
    def reasons_cut(self) -> int | None:
        """The most characters of ``reasons`` in a CSV (None: the whole list)."""
        return self.reasons_length or (255 if self.style == "people" else None)

    @model_validator(mode="after")
    def _own_names(self) -> Output:
        taken = [c for c in self.carry if c in SCORED_COLUMNS]
        if taken:
            raise ValueError(f"output.carry names {taken}, which the scored file writes "
                             "itself: carry the lead file's other columns")
        twice = sorted({c for c in self.carry if self.carry.count(c) > 1})
        if twice:
            raise ValueError(f"output.carry names {twice} twice")
        unknown = sorted(set(self.words) - set(PEOPLE_WORDS))
        if unknown:
            raise ValueError(f"output.words maps {unknown}; it maps {list(PEOPLE_WORDS)}")
        shown = list(self.people_words.values())
        if len(set(shown)) < len(shown):
            raise ValueError(f"output.words gives two values the same word: {shown}; each "
                             "must read back as one")
        return self


class Rules(Frozen):
    """BANT criteria, each optional (a criterion the export cannot support is left out and
    is ``unknown`` for every lead), the label policy and the grades."""

    budget: BudgetRule | None = None
    authority: AuthorityRule | None = None
    need: NeedRule | None = None
    timeline: TimelineRule | None = None
    label_policy: LabelPolicy
    value: Value | None = None
    grades: Grades = Grades()
    output: Output = Output()
    axes: Axes | None = None
    source: Path | None = Field(None, exclude=True)
    sha256: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _patterns_compile(self) -> Rules:
        import re

        checks = [("authority", k) for k in ("met", "disqualify")] + \
            [("need", k) for k in ("met_patterns", "disqualify_patterns")]
        for criterion, kind in checks:
            rule = getattr(self, criterion)
            for i, pattern in enumerate(getattr(rule, kind) if rule else ()):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{criterion}.{kind}[{i}] {pattern!r} is not a valid "
                                     f"regular expression: {exc}") from None
        for criterion in ("authority", "need"):
            rule = getattr(self, criterion)
            if rule is not None and not any(getattr(rule, k) for k in type(rule).model_fields
                                            if k.startswith("met")):
                raise ValueError(f"{criterion} names no value or pattern that meets it: add "
                                 f"{criterion}.met (or leave {criterion} out: unknown)")
        need = self.label_policy.sales_qualified.min_criteria_met
        if need > len(self.configured):
            raise ValueError(
                f"label_policy.sales_qualified.min_criteria_met is {need} but only "
                f"{len(self.configured)} criteria are configured ({self.configured}): no lead "
                "could be sales-qualified; lower it")
        sq = self.label_policy.sales_qualified
        if self.axes is None and (sq.min_fit_grade or self.label_policy.disqualify_cells):
            raise ValueError("label_policy uses the fit and engagement axes "
                             "(sales_qualified.min_fit_grade or disqualify_cells) but the file "
                             "has no axes section: add axes.fit and axes.engagement")
        if self.value is None and (sq.rank_by == "expected_value"
                                   or sq.min_expected_value is not None):
            raise ValueError("label_policy.sales_qualified uses expected value (rank_by or "
                             "min_expected_value) but the file has no value section: add "
                             "value.column or value.default, and value.cost_per_contact")
        return self

    @property
    def configured(self) -> list[str]:
        """The BANT criteria this file defines, in B-A-N-T order."""
        return [c for c in ("budget", "authority", "need", "timeline")
                if getattr(self, c) is not None]

    @property
    def columns(self) -> list[str]:
        """The lead columns the configured criteria (and the deal value) read."""
        value = [self.value.column] if self.value and self.value.column else []
        return list(dict.fromkeys([*(getattr(self, c).column for c in self.configured),
                                   *value]))


def carrying(rules: Rules, columns: list[str]) -> Rules:
    """``rules`` carrying ``columns`` too (after its own ``output.carry``)."""
    carry = list(dict.fromkeys([*rules.output.carry, *columns]))
    return rules.model_copy(update={"output": rules.output.model_copy(update={"carry": carry})})


def load_rules(path: str | os.PathLike) -> Rules:
    """Read and validate a BANT rules file; every problem is listed with its line."""
    return load_yaml(Path(path), Rules, "rules file")


def default_rules() -> Rules:
    """The BANT rules shipped inside the package (``leadml/config/bant_default.yaml``, the same
    text as ``pipelines/configs/bant.yaml``; a test keeps them equal)."""
    from importlib.resources import files

    return load_rules(Path(str(files("leadml.config") / "bant_default.yaml")))
