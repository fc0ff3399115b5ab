"""What is read from and written to disk: checkpoints and their checks, model cards, ONNX export, safe writes."""
