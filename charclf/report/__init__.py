"""Scores and figures: metrics, confusion matrices, reliability and training plots."""
