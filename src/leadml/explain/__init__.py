"""Why leads score as they do and what the model leans on: per-field effects
(:mod:`effects`), importances and field insights (:mod:`importance`), and the sales-ops
page (:mod:`report`, with :mod:`html`, which the monitoring page shares)."""
