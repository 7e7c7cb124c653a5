# Data package: the rule tables (TOML) are read with importlib.resources; no code lives here.
