"""Gradients and finite differences with the Keras backend's own machinery.

The losses under test are written in ``keras.ops``; their gradients here come
from the backend that runs them: ``tf.GradientTape`` (TensorFlow),
``jax.grad`` (JAX) or ``torch.autograd`` (PyTorch). The central differences
evaluate the same losses on the same backend, all coordinates in one compiled
function where the backend has one (``tf.function`` + ``tf.map_fn``,
``jax.jit`` + ``jax.vmap``).
"""

import numpy as np

from reid_tf.gradcheck.results import FD_STEP


def _backend():
    import keras

    return keras.backend.backend()


def backend_grad(fn, *arrays):
    """Value and gradients of scalar ``fn(*tensors)`` w.r.t. every input.

    Args:
        fn: scalar function of ``len(arrays)`` backend tensors (``keras.ops``).
        *arrays: NumPy arrays, the point of evaluation (their dtype is kept).

    Returns:
        ``(value, grads)``: a float and one NumPy array per input (zeros where
        the value does not depend on it).

    Example:
        >>> from keras import ops
        >>> value, (g,) = backend_grad(lambda v: ops.sum(v ** 2), np.array([1.0, -2.0]))
        >>> value, g.tolist()
        (5.0, [2.0, -4.0])
    """
    name = _backend()
    if name == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(arrays))))(
            *[jax.numpy.asarray(a) for a in arrays])
        return float(value), [np.asarray(g) for g in grads]
    if name == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        value = fn(*tensors)
        grads = torch.autograd.grad(value, tensors, allow_unused=True)
        return float(value.detach()), [
            np.zeros(a.shape, a.dtype) if g is None else g.detach().cpu().numpy()
            for a, g in zip(arrays, grads)]
    import tensorflow as tf

    tensors = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for t in tensors:
            tape.watch(t)
        value = fn(*tensors)
    grads = tape.gradient(value, tensors)
    return float(value), [np.zeros(a.shape, a.dtype) if g is None else g.numpy()
                          for a, g in zip(arrays, grads)]


def backend_central_differences(loss_fn, arrays, wrt, coords, step=FD_STEP):
    """Central differences of a ``keras.ops`` loss, evaluated on the backend.

    Args:
        loss_fn: scalar function of ``len(arrays)`` tensors.
        arrays: float64 arrays, the point of evaluation.
        wrt: index of the argument to differentiate.
        coords: flat indices into ``arrays[wrt]``.
        step: difference step.

    Returns:
        float64 array ``[len(coords)]``.

    Example:
        >>> from keras import ops
        >>> fd = backend_central_differences(lambda v: ops.sum(v ** 2),
        ...                                  [np.ones(3)], 0, [0, 2])
        >>> np.round(fd, 6).tolist()
        [2.0, 2.0]
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    coords = np.asarray(coords, dtype=np.int32)
    shape, size = arrays[wrt].shape, arrays[wrt].size
    name = _backend()
    if name == "tensorflow":
        return _tf_differences(loss_fn, arrays, wrt, coords, step, shape, size)
    if name == "jax":
        import jax
        import jax.numpy as jnp

        def one(c, *tensors):
            e = jax.nn.one_hot(c, size, dtype=jnp.float64) * step

            def at(delta):
                args = list(tensors)
                args[wrt] = jnp.reshape(jnp.reshape(tensors[wrt], (-1,)) + delta, shape)
                return jnp.asarray(loss_fn(*args), jnp.float64)

            return (at(e) - at(-e)) / (2 * step)

        many = jax.jit(jax.vmap(one, in_axes=(0,) + (None,) * len(arrays)))
        return np.asarray(many(jnp.asarray(coords), *[jnp.asarray(a) for a in arrays]),
                          np.float64)
    import torch

    out = []
    with torch.no_grad():
        tensors = [torch.tensor(a) for a in arrays]
        for c in coords:
            plus, minus = list(tensors), list(tensors)
            flat = tensors[wrt].reshape(-1)
            for args, sign in ((plus, 1.0), (minus, -1.0)):
                moved = flat.clone()
                moved[int(c)] += sign * step
                args[wrt] = moved.reshape(shape)
            out.append((float(loss_fn(*plus)) - float(loss_fn(*minus))) / (2 * step))
    return np.asarray(out, np.float64)


def _tf_differences(loss_fn, arrays, wrt, coords, step, shape, size):
    import tensorflow as tf

    def differences(*tensors):
        base = tf.reshape(tensors[wrt], [-1])

        def at(delta):
            args = list(tensors)
            args[wrt] = tf.reshape(base + delta, shape)
            return tf.cast(loss_fn(*args), tf.float64)

        def one(c):
            e = tf.one_hot(c, size, dtype=tf.float64) * step
            return (at(e) - at(-e)) / (2 * step)

        return tf.map_fn(one, tf.constant(coords, tf.int32), fn_output_signature=tf.float64)

    fn = tf.function(differences, autograph=False)
    return fn(*[tf.constant(a) for a in arrays]).numpy()
