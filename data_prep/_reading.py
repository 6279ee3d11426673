"""Reading a prepared dataset's files safely: JSON lines that cannot crash the
reader, and image files that stay inside the dataset directory.
"""

import json
import os


def parse_json(raw):
    """One JSON value from bytes; ValueError with a one-line reason.

    Example:
        >>> parse_json(b'{"a": 1}')
        {'a': 1}
        >>> parse_json(b"[" * 100000)
        Traceback (most recent call last):
        ...
        ValueError: malformed JSON: nested too deeply
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                         f"{exc.start + 1})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ValueError(f"malformed JSON: {' '.join(str(exc).split())}") from None


class Confinement:
    """Checks that image files stay inside the dataset directory (links resolved).

    The resolved form of each parent directory is cached, so a manifest of
    many rows in a few folders costs a few ``realpath`` calls plus one
    ``lstat`` per file.
    """

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        self.dirs = {}

    def _inside(self, real):
        return real == self.root or real.startswith(self.prefix)

    def check(self, path):
        """None when ``path`` (absolute) is a file inside the root, else the problem."""
        parent, name = os.path.split(path)
        real_parent = self.dirs.get(parent)
        if real_parent is None:
            real_parent = self.dirs[parent] = os.path.realpath(parent)
        if not self._inside(real_parent):
            return "leads outside the dataset directory (a symbolic link)"
        full = os.path.join(real_parent, name)
        if os.path.islink(full):
            if not self._inside(os.path.realpath(full)):
                return "is a symbolic link that leads outside the dataset directory"
        if not os.path.isfile(full):
            return "is missing"
        return None
