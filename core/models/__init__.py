"""Auto-annotation models: the runner contract plugins implement (``runner``), the registry of
runner kinds and declared models filled through the ``register_model_runners`` and
``register_models`` hooks.

Core names no concrete runner: each kind is a plugin.
"""
