"""Answers from a trained model: the classifier, calibrated probabilities, label sets, priors, explanations, tables."""
