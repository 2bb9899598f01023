"""Thin AWS adapters: each takes a boto3 client and turns AWS errors into one-line MlopsErrors."""
