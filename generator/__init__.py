"""Audit face-image classifiers for bias and explain them.

The package turns one YAML configuration into results by group, attribution maps
and their evaluation, and publishes them as an MkDocs site and a reveal.js deck.
Run ``python -m generator --help``.
"""
__version__ = "0.1.0"
