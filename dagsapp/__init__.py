"""Authoring side of the engine: the DAG-file API, expand inputs, loading and serialization.

Pure Python: nothing in this package imports the ORM, so DAG files and the pure mapping logic
can be tested and parsed without a database. ``runs`` imports from here, never the reverse.
"""
