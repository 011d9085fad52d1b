"""The types a saved leadml model may hold, and where the classes of older models live now.

skops names every object of a saved model by its class's module path, and a model is
loaded only when each of those paths is in :data:`TRUSTED_TYPES`, the allow-list written
here in code (never the list stored inside the file). Models saved by leadml 0.1.0, whose
modules were flat, name ``leadml.features.*``, ``leadml.drift.RateShifted`` and
``leadml.serving.ConversionProbability``; :data:`MOVED` maps each to its class today, and
importing this module registers those three old module paths as thin aliases holding just
those classes, so skops finds them. They are not modules to import code from.
``tests/test_saved_models.py`` scores a model saved by 0.1.0 to the same probabilities.
"""

from __future__ import annotations

import sys
import types

from leadml.model.encoders import LeadCleaner, PerDistinct, SignedLog
from leadml.model.pipeline import LeadPipeline
from leadml.model.wrappers import ConversionProbability, RateShifted

CURRENT = [LeadCleaner, LeadPipeline, PerDistinct, SignedLog, ConversionProbability,
           RateShifted]

#: class path in a model saved by leadml 0.1.0 -> the class's path today
MOVED = {
    "leadml.drift.RateShifted": "leadml.model.wrappers.RateShifted",
    "leadml.features.LeadCleaner": "leadml.model.encoders.LeadCleaner",
    "leadml.features.LeadPipeline": "leadml.model.pipeline.LeadPipeline",
    "leadml.features.PerDistinct": "leadml.model.encoders.PerDistinct",
    "leadml.features._SignedLog": "leadml.model.encoders.SignedLog",
    "leadml.serving.ConversionProbability": "leadml.model.wrappers.ConversionProbability",
}

#: Types beyond skops' defaults that a leadml model holds. A model with any other type
#: is refused at load time (tests/test_registry.py checks this list is complete).
TRUSTED_TYPES = sorted({
    "functools.partial",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    *(f"{c.__module__}.{c.__qualname__}" for c in CURRENT),
    *MOVED,
})


def _register_old_paths() -> None:
    by_path = {f"{c.__module__}.{c.__qualname__}": c for c in CURRENT}
    for old, new in MOVED.items():
        module_name, name = old.rsplit(".", 1)
        module = sys.modules.get(module_name)
        if module is None:
            module = types.ModuleType(module_name, f"Alias for models saved by leadml 0.1.0: "
                                                   f"see {__name__}.")
            sys.modules[module_name] = module
        setattr(module, name, by_path[new])


_register_old_paths()
