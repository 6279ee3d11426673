"""``reid-export``: the command line of :mod:`reid_tf.export`.

Usage::

    reid-export RUN/model.keras --format saved_model|tflite|onnx --out PATH [--check]
    python -m reid_tf.export_cli ...     (the same)

Prints a summary (the input spec, the outputs, the check) on stdout; a user's
mistake is one line on stderr with exit status 2, a failed conversion or
check one line with exit status 1.
"""

import argparse
import os
import sys

from reid_common import (
    ArgumentParser,
    UsageError,
    add_json_argument,
    add_version_argument,
    check_json_path,
    emit_result,
    run_main,
)
from reid_tf.tf_startup import DEFAULT_LOG_LEVEL

PROG = "reid-export"


def build_parser():
    """The ``reid-export`` argument parser.

    Example:
        >>> args = build_parser().parse_args(["m.keras", "--format", "tflite", "--out", "m.tflite"])
        >>> args.format, args.check
        ('tflite', False)
    """
    from reid_tf.export import FORMATS, TOLERANCES

    tolerances = ", ".join(f"{k} {v:g}" for k, v in TOLERANCES.items())
    parser = ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Export a trained AlignedReID model for serving. The artefact takes one input,\n"
            "'images': float32 [N, H, W, 3], RGB in [0, 1], resized to the model's H x W\n"
            "(the backbone's normalisation is inside), and returns 'global' [N, C] and,\n"
            "with a local branch, 'local' [N, h, c] (the features reid-extract writes).\n"
            "Written to a temporary path and renamed onto --out."
        ),
        epilog=(
            "examples:\n"
            "  reid-export runs/X/model.keras --format saved_model --out serving/reid --check\n"
            "  reid-export runs/X/model.keras --format tflite --out reid.tflite --check\n"
            "  reid-export runs/X/model.keras --format onnx --out reid.onnx --check"
        ),
    )
    parser.add_argument("model", metavar="MODEL.keras",
                        help="trained model: RUN/model.keras written by train.py")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="saved_model: a SavedModel directory (signature serving_default); "
                             "tflite: a float32 .tflite file; onnx: a .onnx file (needs "
                             "tf2onnx and onnx; --check needs onnxruntime)")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="the artefact (a directory for saved_model); not the model file")
    parser.add_argument("--check", action="store_true",
                        help="run the artefact (TensorFlow, the TFLite interpreter, "
                             "onnxruntime) on sample images before writing it and fail "
                             "(exit 1, nothing written) unless max|diff| / max|feature| of "
                             f"each output is within the tolerance ({tolerances})")
    add_json_argument(parser, "the summary (input spec, outputs, check)")
    add_version_argument(parser)
    return parser


def format_summary(result):
    """The lines printed on stdout.

    Example:
        >>> from reid_tf.export import ExportResult
        >>> r = ExportResult("m.tflite", "tflite", {"name": "images", "shape": [None, 64, 32, 3],
        ...                  "dtype": "float32", "range": [0.0, 1.0]}, {"global": [None, 256]},
        ...                  None, 1000, 1.0)
        >>> print(format_summary(r))
        m.tflite: tflite, 1000 bytes
          input  images float32 [N, 64, 32, 3] in [0, 1]
          output global float32 [N, 256]
    """
    spec = result.input_spec

    def shape(dims):
        return "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"

    lines = [f"{result.out}: {result.format}, {result.bytes} bytes",
             f"  input  {spec['name']} {spec['dtype']} {shape(spec['shape'])} in "
             f"[{spec['range'][0]:g}, {spec['range'][1]:g}]"]
    lines += [f"  output {k} float32 {shape(v)}" for k, v in result.outputs.items()]
    if result.check is not None:
        lines.append("  " + result.check.line())
    return "\n".join(lines)


def _body(argv):
    args = build_parser().parse_args(argv)
    check_json_path(args.json, [args.model, args.out])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    from reid_tf.tf_startup import import_tensorflow

    import_tensorflow()
    from reid_tf.export import ExportError, export_model

    try:
        result = export_model(model=args.model, format=args.format, out=args.out,
                              check=args.check)
    except ExportError as exc:
        flag = "MODEL" if exc.argument == "model" else "--" + exc.argument
        raise UsageError(f"{flag}: {exc.detail}") from None
    emit_result(args.json, format_summary(result), result.to_dict())
    return 0


def main(argv=None):
    """``reid-export``.

    Args:
        argv: argument list (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0, 1 (conversion or check failed) or 2 (a user's mistake).
    """
    from reid_tf.export import ExportFailed

    return run_main(PROG, _body, argv, failures=(ExportFailed, OSError))


if __name__ == "__main__":
    sys.exit(main())
