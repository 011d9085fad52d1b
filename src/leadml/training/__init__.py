"""From a validated history to a calibrated model: fit and choose (:mod:`fit`), candidate
settings (:mod:`tuning`), which leads to calibrate on (:mod:`calibration`), the rate shift
under a moving conversion rate (:mod:`rate_shift`), metrics (:mod:`metrics`) and the
backtest (:mod:`backtest`)."""
