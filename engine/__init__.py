"""GAN Studio's training engine: data, models, losses, trainer, checkpoints, CLI.

Torch only; nothing here imports Qt (tests/test_engine_imports.py proves it).
"""

__version__ = "0.1.0"
