"""Training side: fine-tune -> evaluate -> calibrate thresholds -> export ONNX -> quantize -> bundle."""
