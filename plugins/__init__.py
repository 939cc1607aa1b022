"""annota's built-in plugins, each registered through the ``annota`` entry-point group."""
