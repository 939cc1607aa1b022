"""Consensus: the settings of tasks annotated by several replicas of each job."""
