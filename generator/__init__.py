"""Audit face-image classifiers for bias and explain them.

The package turns one YAML configuration into results by group, attribution maps
and their evaluation, and publishes them as an MkDocs site and a reveal.js deck.
Run ``python -m generator --help``.
"""
from generator.portable import pin_kernels as _pin_kernels

__version__ = "0.2.0"

_pin_kernels()  # before torch computes anything: the same kernels on every x86-64 CPU with AVX2
