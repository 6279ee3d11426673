"""The bottom layer shared by every package of the project.

Atomic file writes, progress lines with an ETA, command-line error handling
and exit codes, and the names of the evaluation protocols. It imports nothing
but the standard library, so ``data_prep``, ``reference``, ``reid_tf`` and the
tools above them can all use it.
"""

from reid_common.atomic import (
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clashing_input,
    is_inside,
    same_file,
)
from reid_common.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    STDOUT,
    ArgumentParser,
    UsageError,
    add_json_argument,
    add_version_argument,
    check_json_path,
    emit_result,
    one_line,
    package_version,
    run_main,
    write_json_result,
)
from reid_common.exports import lazy_exports
from reid_common.normalization import (
    NORMALIZE_MODES,
    normalize_mode,
    normalizes_global,
    normalizes_local,
)
from reid_common.progress import Progress, Reporter, format_duration
from reid_common.protocols import (
    PROTOCOL_ALIASES,
    PROTOCOL_NAMES,
    PROTOCOLS,
    canonical_protocol,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "NORMALIZE_MODES",
    "PROTOCOLS",
    "PROTOCOL_ALIASES",
    "PROTOCOL_NAMES",
    "STDOUT",
    "ArgumentParser",
    "Progress",
    "Reporter",
    "UsageError",
    "add_json_argument",
    "add_version_argument",
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "canonical_protocol",
    "check_json_path",
    "emit_result",
    "clashing_input",
    "format_duration",
    "lazy_exports",
    "normalize_mode",
    "normalizes_global",
    "normalizes_local",
    "is_inside",
    "one_line",
    "package_version",
    "run_main",
    "same_file",
    "write_json_result",
]
