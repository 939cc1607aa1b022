"""Annotation guides: a task's or project's instructions in markdown, and the images they show."""
