"""Wire types: msgspec Structs with CVAT's field names, enums and required fields.

Read types (``*Read``) are what the API returns; write types (``*Write``, ``*Request``) are what it
accepts. Fields that may be left out of a partial update default to ``msgspec.UNSET``.
"""
