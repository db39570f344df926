"""Experiment scripts whose outputs are committed under ``training/results/``."""
