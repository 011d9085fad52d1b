"""leadml: calibrated lead-conversion models, tracked in MLflow, labelled beside BANT rules."""

__version__ = "0.1.0"
