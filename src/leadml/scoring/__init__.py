"""Scoring a lead file: one chunk validated and scored (:mod:`chunks`, the one scoring
function both engines call), one run's paths, checks and commit protocol (:mod:`run`), the
Spark engine and cluster storage (:mod:`spark`, :mod:`hadoop`), ids already seen
(:mod:`seen_ids`) and reading ahead and writing behind (:mod:`read_ahead`)."""
