"""The kinds of learning task medtl trains; every layer (data, models, training, CLI) names them from here."""

TASKS = ("classification", "segmentation")
