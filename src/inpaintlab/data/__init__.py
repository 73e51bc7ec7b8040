"""Data: the built-in synthetic dataset, robust image I/O, masks, the Lightning datamodule."""
