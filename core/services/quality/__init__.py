"""Quality control: the settings that say how annotations are compared with ground truth."""
