"""Lead data as exports write it: values read as the config declares (:mod:`values`),
lead files read and written (:mod:`tables`), the contract and validation (:mod:`schema`),
the audit and its leakage checks (:mod:`audit`, :mod:`leakage`), and two helpers shared by
scoring and the rules: factor codes computed once per chunk (:mod:`factor_codes`) and reason
texts joined in Arrow (:mod:`reason_text`)."""
