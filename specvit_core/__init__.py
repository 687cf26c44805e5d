"""specvit_core: every computation of the SpecViT supplement (simulator, models, training, baselines, Fisher)."""
__version__ = "0.1.0"
