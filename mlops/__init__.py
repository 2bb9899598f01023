"""GitLab CI MLOps template for Amazon SageMaker.

The package holds the `mlops` CLI that every CI job calls, the pure decision logic (naming, versions,
admission, retraining, deployment gate), the thin AWS adapters, the one SageMaker pipeline builder, and
the local runtime that stands in for what moto cannot run.
"""

__version__ = "0.1.0"
