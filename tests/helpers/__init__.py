"""Shared test fixtures that start real systems (a Slurm cluster, ...)."""
