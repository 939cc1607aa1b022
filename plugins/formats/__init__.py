"""The built-in dataset formats, one plugin module per format family (see ``docs/formats.md``)."""
