"""The GPU benchmark: AlignedReID training steps under Keras on JAX and on
PyTorch, a plain-PyTorch baseline, and a short training run (README.md here)."""
