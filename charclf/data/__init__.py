"""Datasets, splits and batch sources: label folders and CSV tables -> (names, targets) batches."""
