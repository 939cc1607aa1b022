"""Media: reading images and videos, building chunks, and where a task's media is stored."""
