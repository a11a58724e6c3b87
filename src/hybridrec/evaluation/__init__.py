"""Evaluation: metrics, the ranking protocols, cross-validation and its reports."""
