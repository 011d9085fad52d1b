"""Why a lead scores as it does: per-field effects on the calibrated probability.

The effect of a field on a lead is **grouped occlusion against a reference lead**: the lead's
calibrated probability minus the probability it would get if that one field had the value of
a typical recent lead (the median of each number, the commonest value of everything else,
stored with the model at training). Effects are in probability points, on the very model
that scores the lead (calibrator and drift shift included), and grouped by raw input field,
never by one-hot column.

It is computed without re-running the pipeline per field. For a logistic regression the
swap is exact arithmetic: the decision function is a sum of per-field parts
(:mod:`leadml.model.linear`, each computed once per distinct value), and a field's swap subtracts
its part and adds the reference's. For gradient boosting the leads are encoded once and each
lead walks each tree once, every field's swapped walk branching off only where the
reference turns the other way (:mod:`leadml.model.trees`). Both equal replacing the raw
value and scoring again, which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadml.data.factor_codes import factorize
from leadml.data.reason_text import OTHER_FIELDS, join_slots
from leadml.model import encoded, linear
from leadml.model.encoded import field_columns
from leadml.model.sklearn_compat import is_binary_hist_gradient_boosting, model_parts
from leadml.model.wrappers import shift_rate

MAX_REASONS = 3  # fields that raised, and fields that lowered, per lead
MIN_POINTS = 0.5  # smaller effects are not worth a salesperson's attention


@dataclass(frozen=True)
class Shares:
    """Fields' shares of each lead's distance from the reference lead (:meth:`Explainer.shares`):
    ``points`` in probability (they add up to ``p - p_ref``), ``log_odds`` on the model's
    decision (they add up to the lead's decision minus the reference's; None for a model
    whose decision cannot be taken apart)."""

    p: np.ndarray
    p_ref: float
    points: pd.DataFrame
    log_odds: pd.DataFrame | None
    ref_decision: float
    probability: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def logged(cls, frame: pd.DataFrame, explainer: Explainer) -> Shares:
        """The shares a training run logged for its newest test leads
        (:func:`leadml.registry.training.test_shares`), read back for ``explainer``'s model."""
        reference = explainer.shares(explainer.reference)
        points = frame.filter(like="points:").rename(columns=lambda c: c.split(":", 1)[1])
        log_odds = frame.filter(like="log_odds:").rename(columns=lambda c: c.split(":", 1)[1])
        return cls(frame["p"].to_numpy(), reference.p_ref, points.astype(float),
                   log_odds.astype(float) if len(log_odds.columns) else None,
                   reference.ref_decision, explainer._probability)

    def at_typical(self, fields: list[str]) -> np.ndarray:
        """Per lead, how many points ``fields`` as the lead has them would move the typical
        lead: the probability of the reference's decision plus those fields' share of the
        lead's, minus the reference's. It does not depend on the lead's other fields (for a
        logistic regression exactly), so it ranks leads on those fields alone."""
        if self.log_odds is None:
            return 100 * self.points[fields].to_numpy(dtype=float).sum(axis=1)
        moved = self.ref_decision + self.log_odds[fields].to_numpy(dtype=float).sum(axis=1)
        return 100 * (self.probability(moved) - self.p_ref)


class Explainer:
    """Per-lead field effects of a fitted leadml model against a reference lead
    (:meth:`effects`), and its probabilities with fields shuffled across leads
    (:meth:`shuffled`, for permutation importances: no reference needed)."""

    def __init__(self, model, reference: dict[str, object] | None = None):
        self.pipeline, self.calibrator, self.shift = model_parts(model)
        self.fields = field_columns(self.pipeline)
        self._encode = self.pipeline[:-1]
        self._classifier = self.pipeline[-1]
        self._linear = linear.is_linear(self.pipeline)
        self._trees = is_binary_hist_gradient_boosting(self._classifier)
        if self._trees:  # each encoded column's field (a last, unused one if none owns it)
            self._field_of = np.full(self._classifier.n_features_in_, len(self.fields),
                                     dtype=np.int64)
            for g, cols in enumerate(self.fields.values()):
                self._field_of[cols] = g
        self.reference = None
        if reference is not None:
            self.reference = pd.DataFrame([{f: reference.get(f) for f in self.fields}])
            if self._linear:
                self._ref_parts = {f: float(part[0]) for f, part in
                                   linear.field_parts(self.pipeline, self.reference).items()}
            else:
                self._z_ref = self._matrix(self.reference)

    def _matrix(self, leads: pd.DataFrame) -> np.ndarray:
        if encoded.is_direct(self.pipeline) and len(leads):
            return encoded.matrix(self.pipeline, leads)
        return np.asarray(self._encode.transform(leads), dtype=float)

    def _probability(self, decision: np.ndarray) -> np.ndarray:
        p = self.calibrator.predict(decision)
        return shift_rate(p, *self.shift) if self.shift else p

    def effects(self, leads: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """The probability of each lead and a (leads x fields) frame of effects: the
        probability minus the probability with that field set to the reference value."""
        if self.reference is None:
            raise ValueError("effects need a reference lead: Explainer(model, reference)")
        if self._linear:  # a difference of per-field parts, computed per distinct value
            parts = linear.field_parts(self.pipeline, leads)
            decision = linear.decision(self.pipeline, parts)
            p = self._probability(decision)
            out = {field: p - self._probability(decision - (part - self._ref_parts[field]))
                   for field, part in parts.items() if field in self.fields}
            return p, pd.DataFrame(out, index=leads.index, columns=list(self.fields))
        z = self._matrix(leads)
        if self._trees and len(z):  # every field's swap in one walk of the trees
            from leadml.model.trees import swapped_decisions  # lazy: numba, for trees only

            decision, swapped = swapped_decisions(self._classifier, z, self._z_ref[0],
                                                  self._field_of, len(self.fields) + 1)
            p = self._probability(decision)
            out = {field: p - self._probability(swapped[:, g])
                   for g, field in enumerate(self.fields)}
            return p, pd.DataFrame(out, index=leads.index)
        decision = self._classifier.decision_function(z)
        p = self._probability(decision)
        out = {}  # re-run the classifier, only on leads whose field differs from the reference
        for field, cols in self.fields.items():
            ref = self._z_ref[0, cols]
            block = z[:, cols]
            same = ((block == ref) | (np.isnan(block) & np.isnan(ref))).all(axis=1)
            effect = np.zeros(len(z))
            rows = np.flatnonzero(~same)
            if len(rows):
                swapped = z[rows]
                swapped[:, cols] = ref
                effect[rows] = p[rows] - self._probability(
                    self._classifier.decision_function(swapped))
            out[field] = effect
        return p, pd.DataFrame(out, index=leads.index)

    def typical_probability(self) -> float:
        """The reference (typical) lead's probability: where the reasons' points start."""
        return float(self.contributions(self.reference)[1])

    def contributions(self, leads: pd.DataFrame) -> tuple[np.ndarray, float, pd.DataFrame]:
        """The probability of each lead, the reference lead's, and a (leads x fields) frame
        of contributions in probability that add up: each row sums to the lead's probability
        minus the reference's (to rounding). See :meth:`shares`."""
        found = self.shares(leads)
        return found.p, found.p_ref, found.points

    def shares(self, leads: pd.DataFrame) -> Shares:
        """Each field's share of the lead's distance from the reference, on the decision
        (log-odds) and in probability. On the decision: its Shapley value against the
        reference (the decision is additive for a logistic regression: a field's part minus
        the reference's; exact for gradient boosting by
        :func:`leadml.model.trees.shapley_decisions`). In probability: that, scaled by the
        lead's change in probability over its change in decision, so that they sum in
        probability too."""
        if self.reference is None:
            raise ValueError("contributions need a reference lead: Explainer(model, reference)")
        if self._linear:
            parts = linear.field_parts(self.pipeline, leads)
            decision = linear.decision(self.pipeline, parts)
            ref_decision = float(linear.decision(self.pipeline, {
                f: np.array([v]) for f, v in self._ref_parts.items()})[0])
            phi = pd.DataFrame({f: parts[f] - self._ref_parts[f] if f in parts else 0.0
                                for f in self.fields}, index=leads.index)
        elif self._trees and len(leads):
            from leadml.model.trees import decisions, shapley_decisions  # lazy: numba

            decision, values = shapley_decisions(self._classifier, self._matrix(leads),
                                                 self._z_ref[0], self._field_of,
                                                 len(self.fields) + 1)
            ref_decision = float(decisions(self._classifier, self._z_ref)[0])
            phi = pd.DataFrame(values[:, :len(self.fields)], index=leads.index,
                               columns=list(self.fields))
        else:  # a model whose fields cannot be taken apart: the swaps, scaled to add up
            p, effects = self.effects(leads)
            ref_decision = float(self._classifier.decision_function(self._z_ref)[0])
            p_ref = float(self._probability(np.array([ref_decision]))[0])
            total = effects.sum(axis=1).to_numpy()
            scale = np.divide(p - p_ref, total, out=np.zeros_like(p), where=total != 0)
            points = effects.mul(scale, axis=0)
            return Shares(p, p_ref, points, None, ref_decision, self._probability)
        p = self._probability(decision)
        p_ref = float(self._probability(np.array([ref_decision]))[0])
        points = phi.mul(_slope(decision, ref_decision, p, p_ref, self._probability), axis=0)
        return Shares(p, p_ref, points, phi, ref_decision, self._probability)

    def shuffled(self, leads: pd.DataFrame, donors: list[np.ndarray]
                 ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]] | None:
        """The probability of each lead and, for each order ``donor`` in ``donors``, every
        field's probabilities with that one field's values taken from lead ``donor[i]``
        instead of lead ``i`` (a permutation importance's shuffle), swapped as
        :meth:`effects` swaps a field for the reference's: equal to shuffling the raw field
        and scoring again, to rounding. None for a model whose fields this cannot swap
        (neither a logistic regression nor a binary gradient boosting): score it again."""
        if not donors or not len(leads):
            return None
        if self._linear:
            parts = linear.field_parts(self.pipeline, leads)
            decision = linear.decision(self.pipeline, parts)
            return self._probability(decision), [
                {field: self._probability(decision - part + part[donor])
                 for field, part in parts.items()} for donor in donors]
        if not self._trees:
            return None
        from leadml.model.trees import swapped_decisions  # lazy: numba, for trees only

        z, out = self._matrix(leads), []
        for donor in donors:
            decision, swapped = swapped_decisions(self._classifier, z, None, self._field_of,
                                                  len(self.fields) + 1, donor=donor)
            out.append({field: self._probability(swapped[:, g])
                        for g, field in enumerate(self.fields)})
        return self._probability(decision), out


def _slope(decision: np.ndarray, ref_decision: float, p: np.ndarray, p_ref: float,
           probability) -> np.ndarray:
    """Per lead, probability points per unit of decision between the reference and the
    lead (the secant of the calibration curve; its tangent where the two decisions agree)."""
    gap = decision - ref_decision
    near = np.abs(gap) < 1e-9
    out = np.empty(len(decision))
    out[~near] = (p[~near] - p_ref) / gap[~near]
    if near.any():
        h = 1e-4
        out[near] = (probability(decision[near] + h) - probability(decision[near] - h)) / (2 * h)
    return out


def field_words(field: str) -> str:
    """A column name as people read it: ``purchase_timeline`` -> "Purchase timeline"."""
    return field.replace("_", " ").strip().capitalize()


def _shown(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == "":
        return "(not stated)"
    if isinstance(value, float | np.floating):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f'"{str(value).strip()[:60]}"'


def _prefixes(field: str, values: pd.Series, missing_values=(), names=None
              ) -> tuple[np.ndarray, np.ndarray]:
    """'Job title "VP Sales" ' for each lead, as a code into a table of the distinct
    prefixes (each formatted once). A placeholder the model reads as missing
    (``missing_values``: "Select", "N/A") is shown as not stated, as the model sees it.
    ``names``: display names of fields (the rules' ``output.fields``), else in words."""
    codes, uniques = factorize(values, use_na_sentinel=True)  # (the model's codes too)
    label = (names or {}).get(field) or field_words(field)
    markers = set(missing_values)
    shown = np.array([f"{label} {_shown(None if str(u).strip() in markers else u)} "
                      for u in uniques] + [f"{label} {_shown(None)} "], dtype=object)
    return np.where(codes < 0, len(uniques), codes), shown  # missing: the last entry


def _points_words(tenths: int) -> str:
    return f"{tenths / 10:.0f} points" if tenths >= 15 else "1 point" if tenths >= 10 \
        else f"{tenths / 10:.1f} points"


_POINTS = np.array([_points_words(t) for t in range(1001)], dtype=object)  # 0 to 100 points


_TAILS: dict[str, pa.Array] = {}


def _tails(effect: np.ndarray, first: np.ndarray, direction: str) -> pa.Array:
    """'raised the chance of converting by 12 points' where ``first``, else 'raised it by
    12 points' ('1 point', '0.6 points'), per lead, from one small lookup table."""
    if direction not in _TAILS:  # tenths of a point, then the same with the long words
        _TAILS[direction] = pa.array([f"{direction} it by {w}" for w in _POINTS]
                                     + [f"{direction} the chance of converting by {w}"
                                        for w in _POINTS], pa.large_string())
    tenths = np.minimum(np.rint(np.abs(effect) * 1000).astype(np.int64), 1000)
    return _TAILS[direction].take(tenths + len(_POINTS) * np.asarray(first, dtype=np.int64))


def sentences(leads: pd.DataFrame, effects: pd.DataFrame, *,
              top: int = MAX_REASONS, missing_values=()) -> np.ndarray:
    r"""Up to ``top`` raising and ``top`` lowering fields per lead, in words; a value in
    ``missing_values`` (the model's placeholders) reads "(not stated)".

    >>> leads = pd.DataFrame({"job_title": ["VP Sales"], "meetings": [0.0]})
    >>> fx = pd.DataFrame({"job_title": [0.12], "meetings": [-0.05]})
    >>> print(sentences(leads, fx)[0].replace("; ", ";\n"))
    Job title "VP Sales" raised the chance of converting by 12 points;
    Meetings 0 lowered it by 5 points
    >>> leads = pd.DataFrame({"industry": ["Select"]})
    >>> sentences(leads, pd.DataFrame({"industry": [-0.08]}), missing_values=("Select",))[0]
    'Industry (not stated) lowered the chance of converting by 8 points'
    """
    slots = sentence_slots(leads, effects, top=top, missing_values=missing_values)
    if not slots:
        return np.full(len(effects), "", dtype=object)
    return np.asarray(join_slots(slots).to_numpy(zero_copy_only=False), dtype=object)


def sentence_slots(leads: pd.DataFrame, effects: pd.DataFrame, *,
                   top: int = MAX_REASONS, missing_values=(), names=None) -> list[pa.Array]:
    """The parts :func:`sentences` joins (:func:`leadml.data.reason_text.join_slots`): per slot (the
    strongest raising field, the next, ..., then the lowering ones) a text per lead, null
    where the slot is empty; slots empty for every lead are left out. In Arrow: 1M leads'
    words take 1.3 s less than as Python strings (4.45 -> 3.16 s in the run)."""
    n = len(effects)
    if n == 0:
        return []
    values = np.ascontiguousarray(effects.to_numpy(dtype=float))  # (arg-max along rows)
    fields = list(effects.columns)
    codes, tables, offset = [], [], 0  # every field's prefixes in one table
    for f in fields:
        code, table = _prefixes(f, leads[f], missing_values, names)
        codes.append(code + offset)
        tables.append(table)
        offset += len(table)
    prefixes = pa.array(np.concatenate(tables), pa.large_string())
    codes = np.column_stack(codes)
    rows = np.arange(n)
    threshold = MIN_POINTS / 100
    slots, any_up = [], np.zeros(n, dtype=bool)
    for direction in ("raised", "lowered"):
        # The k-th strongest field by repeated arg-max (ties: the first field raising, the
        # last lowering, as a stable sort of all of them orders them), not a full sort.
        left = np.nan_to_num(values if direction == "raised" else -values[:, ::-1],
                             nan=-np.inf, posinf=np.inf, neginf=-np.inf)
        for k in range(min(top, len(fields))):
            j = left.argmax(axis=1)
            left[rows, j] = -np.inf
            if direction == "lowered":
                j = len(fields) - 1 - j
            effect = values[rows, j]
            if direction == "raised":
                keep = effect >= threshold
                first = np.full(n, k == 0)
                any_up |= keep
            else:
                keep = effect <= -threshold
                first = (k == 0) & ~any_up
            if not keep.any():
                continue  # an empty slot adds nothing to any lead's words
            empty = ~keep  # (null: the slot says nothing of that lead)
            slots.append(pc.binary_join_element_wise(
                prefixes.take(pa.array(codes[rows, j], mask=empty)),
                _tails(np.where(empty, 0.0, effect), first, direction),
                pa.scalar("", pa.large_string())))
    return slots


def remainder_slot(effects: pd.DataFrame, *, top: int = MAX_REASONS) -> pa.Array | None:
    """Per lead, "Other fields lowered it by 2 points": the sum of the contributions the
    reasons do not name (:func:`sentence_slots` names the ``top`` strongest each way of at
    least :data:`MIN_POINTS`), so that the points shown add up to the lead's distance from
    the typical lead; null where it rounds to nothing (under 0.05 points). None when no
    lead has one."""
    v = np.nan_to_num(effects.to_numpy(dtype=float))
    n = len(v)
    if n == 0 or v.shape[1] == 0:
        return None
    threshold = MIN_POINTS / 100
    ordered = np.sort(v, axis=1)
    k = min(top, v.shape[1])
    up, down = ordered[:, ::-1][:, :k], ordered[:, :k]
    shown = np.where(up >= threshold, up, 0.0).sum(axis=1) + \
        np.where(down <= -threshold, down, 0.0).sum(axis=1)
    rest = v.sum(axis=1) - shown
    keep = np.abs(rest) >= 0.0005
    if not keep.any():
        return None
    named = (up[:, 0] >= threshold) | (down[:, 0] <= -threshold)
    tail = pc.if_else(pa.array(rest >= 0), _tails(rest, ~named, "raised"),
                      _tails(rest, ~named, "lowered"))
    text = pc.binary_join_element_wise(pa.scalar(OTHER_FIELDS, pa.large_string()), tail,
                                       pa.scalar("", pa.large_string()))
    return pc.if_else(pa.array(keep), text, pa.nulls(n, pa.large_string()))


def strongest(effects: pd.Series, *, top: int = MAX_REASONS
              ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """One lead's fields that raised, and that lowered, its probability by at least
    :data:`MIN_POINTS`, strongest first, ``top`` of each: the fields its reasons name.

    >>> strongest(pd.Series({"a": 0.2, "b": -0.001, "c": -0.03}))
    ([('a', 0.2)], [('c', -0.03)])
    """
    threshold = MIN_POINTS / 100
    ordered = effects.sort_values()
    up = [(f, float(v)) for f, v in ordered[::-1].items() if v >= threshold][:top]
    down = [(f, float(v)) for f, v in ordered.items() if v <= -threshold][:top]
    return up, down
