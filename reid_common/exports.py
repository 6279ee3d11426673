"""Package roots whose public names load their modules on first use.

A package lists ``{name: submodule}`` once; :func:`lazy_exports` gives it
``__all__``, ``__getattr__`` and ``__dir__``, so ``import package`` stays
cheap and ``from package import name`` imports only the module that defines
``name``.
"""

import importlib
import sys


def lazy_exports(package, exports):
    """``(__all__, __getattr__, __dir__)`` for a package root.

    Args:
        package: the package's name (``__name__`` of its ``__init__``).
        exports: ``{public name: submodule}``, the submodule relative to
            ``package`` (``"aligned"``, ``"figures.cmc"``).

    Returns:
        ``__all__`` (the names, sorted), and the module-level ``__getattr__``
        and ``__dir__`` functions; a resolved name is cached in the package's
        namespace.

    Example:
        >>> import sys, types
        >>> pkg = types.ModuleType("toy")
        >>> sys.modules["toy"] = pkg
        >>> sys.modules["toy.maths"] = types.SimpleNamespace(double=lambda x: 2 * x)
        >>> pkg.__all__, pkg.__getattr__, pkg.__dir__ = lazy_exports("toy", {"double": "maths"})
        >>> pkg.double(4), pkg.__all__
        (8, ['double'])
        >>> del sys.modules["toy"], sys.modules["toy.maths"]
    """
    names = sorted(exports)

    def __getattr__(name):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names))

    return names, __getattr__, __dir__
