"""The fitted object: the encoders and the pipeline factory (:mod:`encoders`,
:mod:`pipeline`), the wrappers that make it a probability (:mod:`wrappers`), scikit-learn's
internals in one place (:mod:`sklearn_compat`), the allow-list and old class paths of saved
models (:mod:`saved_paths`), and the fast paths that score without the
ColumnTransformer's copies (:mod:`encoded`, :mod:`linear`, :mod:`trees`)."""
