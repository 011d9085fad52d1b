"""leadml: calibrated lead-conversion models, tracked in MLflow, labelled beside BANT rules.

The Python API (:mod:`leadml.api`, docs/api.md) is importable from here::

    import leadml

    trained = leadml.train_model("pipelines/configs/sample.yaml")
    scored = leadml.score_leads(leads, rules="pipelines/configs/bant.yaml")
"""

__version__ = "0.2.0"  # the one version string (pyproject.toml reads it)

__all__ = ["LeadModel", "Scored", "Trained", "audit_leads", "explain_leads", "load_config",
           "load_model", "load_rules", "sample_leads", "score_leads", "train_model"]


def __getattr__(name: str):
    # Imported on first use, so that `import leadml` (and the CLI's --version) stays light.
    if name in __all__:
        from leadml import api

        return getattr(api, name)
    raise AttributeError(f"module 'leadml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
