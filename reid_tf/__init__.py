"""AlignedReID in Keras 3 (TensorFlow backend).

Backbones, the two-branch model, distances and losses, mutual learning, the
tf.data input pipeline, feature extraction and gradient verification.
"""
