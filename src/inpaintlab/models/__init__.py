"""Generators and the discriminator: plain nn.Modules (no Lightning, Hydra or MLflow inside)."""
