"""Shared test helpers, one module per thing tests start or build: mlflow_server.py (a real
`mlflow server`), postgres.py (a PostgreSQL cluster), slurm.py (a single-node Slurm), serve.py (`inpaintlab serve` and a tiny
ONNX model), generators.py (model batches, export parity), sweeps.py (what a sweep leaves in MLflow). Imported as `helpers.<module>`."""
