"""Auto-annotation model runners shipped with annota, each a plugin registering its kinds through
``register_model_runners`` (the contract is ``annota.core.models.runner``)."""
