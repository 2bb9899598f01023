"""Configuration: the platform file, the tenant registry and the model contract (`mlops.yaml`).

Each file is parsed into a typed pydantic model. Every problem is reported as one line that names the
file, the field and the fix; loaders collect all problems of a registry before failing.
"""
