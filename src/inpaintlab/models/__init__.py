"""Generators: plain nn.Modules (no Lightning, Hydra or MLflow inside)."""
