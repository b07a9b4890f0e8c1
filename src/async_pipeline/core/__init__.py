"""Declarations, validation, normalization and loading of pipelines. Imports nothing else."""
