"""BANT rules and the label policy (:mod:`bant`), capacity and value (:mod:`capacity`), and
capacity plans from a test window (:mod:`capacity_plan`). No scikit-learn, no IO."""
