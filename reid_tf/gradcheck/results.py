"""Rows of the gradcheck table: the error measure, the row collector, the table.

Errors: ``max_abs = max |a - b|`` and ``max_rel = max_abs / max(max|a|,
max|b|)`` (0 when both are identically 0); a row passes when ``max_rel`` is at
most its tolerance (:data:`TOLERANCES`: float64 analytic, float32 analytic,
float64 central finite differences).
"""

import sys
from dataclasses import dataclass

import numpy as np

TOLERANCES = {"float64": 1e-7, "float32": 1e-4, "fd": 1e-5}
FD_STEP = 1e-6


@dataclass
class CheckResult:
    """One row of the gradcheck table."""

    quantity: str
    shape: str
    dtype: str
    against: str
    max_abs: float
    max_rel: float
    tolerance: float
    passed: bool
    note: str = ""


def compare(a, b):
    """Return ``(max_abs, max_rel)`` between two arrays (see the module docstring).

    Args:
        a: array (the TensorFlow result).
        b: array of the same shape (the independent result).

    Returns:
        ``(max_abs, max_rel)`` floats; ``inf`` if the shapes differ or any
        value is not finite.

    Example:
        >>> compare(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
        (0.5, 0.2)
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf"), float("inf")
    if a.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(a - b)))
    scale = float(max(np.max(np.abs(a)), np.max(np.abs(b))))
    return max_abs, (max_abs / scale if scale > 0 else 0.0)


class Checker:
    """Collects rows and reports progress on stderr.

    Example:
        >>> chk = Checker(verbose=False)
        >>> chk.add("x", np.ones(2), np.ones(2), "float64", "exact").passed
        True
        >>> chk.skip("y", "not applicable")
        >>> [r.against for r in chk.rows]
        ['exact', 'skipped']
    """

    def __init__(self, verbose=True):
        self.rows = []
        self.verbose = verbose

    def add(self, quantity, tf_value, other, dtype, against, tolerance=None, note=""):
        """Compare ``tf_value`` with ``other``, append the row and return it."""
        tol = TOLERANCES[dtype] if tolerance is None else tolerance
        max_abs, max_rel = compare(tf_value, other)
        row = CheckResult(
            quantity=quantity,
            shape="x".join(str(s) for s in np.shape(tf_value)) or "scalar",
            dtype=dtype,
            against=against,
            max_abs=max_abs,
            max_rel=max_rel,
            tolerance=tol,
            passed=bool(max_rel <= tol),
            note=note,
        )
        self.rows.append(row)
        return row

    def skip(self, quantity, note):
        """Append a row saying that ``quantity`` was not checked, and why."""
        self.rows.append(
            CheckResult(quantity, "-", "-", "skipped", float("nan"), float("nan"),
                        float("nan"), True, note)
        )

    def progress(self, message):
        """One progress line on stderr (when verbose)."""
        if self.verbose:
            print(f"[gradcheck] {message}", file=sys.stderr, flush=True)


def format_table(rows):
    """Render rows as a fixed-width text table.

    Args:
        rows: list of :class:`CheckResult`.

    Returns:
        str (one line per row plus a header).

    Example:
        >>> print(format_table([]).splitlines()[0].split()[0])
        quantity
    """
    header = ("quantity", "shape", "dtype", "against", "max abs err",
              "max rel err", "tol", "result")
    lines = []
    for r in rows:
        if r.against == "skipped":
            lines.append((r.quantity, "-", "-", "skipped", "-", "-", "-",
                          "skip: " + r.note))
            continue
        result = "pass" if r.passed else "FAIL"
        if r.note:
            result += f" ({r.note})"
        lines.append((r.quantity, r.shape, r.dtype, r.against,
                      f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", f"{r.tolerance:.0e}",
                      result))
    widths = [max([len(header[k])] + [len(line[k]) for line in lines])
              for k in range(len(header) - 1)]

    def fmt(cols):
        head = "  ".join(str(c).ljust(w) for c, w in zip(cols[:-1], widths))
        return f"{head}  {cols[-1]}"

    out = [fmt(header), fmt(tuple("-" * len(h) for h in header))]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)
