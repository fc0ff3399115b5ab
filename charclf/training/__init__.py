"""Fitting a model: the training run, its loop, state for resuming, refitting, torchrun."""
