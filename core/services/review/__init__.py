"""Review: issues reviewers raise on a region of a job's frame, and the comments discussing them."""
