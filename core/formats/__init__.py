"""Dataset formats: the neutral dataset model every format plugin reads and writes, the format
registry filled through the ``register_formats`` hook, and the helpers formats share (archive input,
streaming ZIP/directory output, mask encodings, tracks flattened to shapes).

Core names no concrete format: each one is a plugin that registers a ``Format``.
"""
