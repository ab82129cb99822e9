"""Exports: a TF Serving SavedModel with preprocessing inside, an ONNX model of the tensor
model, published atomically as `<export_dir>/<model_name>/<version>/` after verification."""
