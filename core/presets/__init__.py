"""Presets of the task families beyond image classification, one module per family.

Each module holds `PRESETS = {name: (description, config_dict)}`, where config_dict is what
`RunConfig.from_dict` accepts (the name is filled in). Plain data, no torch, so importing
core.config stays fast.
"""
