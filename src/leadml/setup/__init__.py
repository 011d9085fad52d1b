"""What a user starts from: a first training config and rules file drafted from an export
(:mod:`config_init`, :mod:`rules_init`) and generated sample data (:mod:`synthetic`,
:mod:`synthetic_crm`)."""
