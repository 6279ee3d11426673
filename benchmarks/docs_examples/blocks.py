"""The regenerated blocks of README.md and docs/*.md.

A block is everything between ``<!-- regen: NAME -->`` and ``<!-- /regen -->``
(each marker on a line of its own); ``python -m benchmarks.docs_examples``
replaces it with what the generator ``NAME`` prints.
"""

import re
from pathlib import Path

BLOCK = re.compile(r"^<!-- regen: ([\w-]+) -->\n(.*?)^<!-- /regen -->$", re.S | re.M)
_OPEN = re.compile(r"^<!-- regen: ", re.M)


class BlockError(ValueError):
    """A marker without its end, or a file that cannot be read."""


def documented_files(root):
    """README.md and docs/*.md under ``root`` (the ones that exist), sorted.

    Returns:
        list of ``Path``.
    """
    root = Path(root)
    files = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    return [f for f in files if f.is_file()]


def find_blocks(text, where="<text>"):
    """The regenerated blocks of one Markdown text.

    Args:
        text: the file's text.
        where: file name for messages.

    Returns:
        list of ``(name, body)`` in file order.

    Raises:
        BlockError: an opening marker without its closing one.

    Example:
        >>> find_blocks("a\\n<!-- regen: x -->\\n```\\n1\\n```\\n<!-- /regen -->\\nb\\n")
        [('x', '```\\n1\\n```\\n')]
    """
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]
    if len(blocks) != len(_OPEN.findall(text)):
        raise BlockError(f"{where}: a '<!-- regen: NAME -->' marker without "
                         "'<!-- /regen -->' on a line of its own")
    return blocks


def replace_blocks(text, bodies):
    """``text`` with every block whose name is in ``bodies`` replaced.

    Args:
        text: the file's text.
        bodies: dict name -> new body (ending in a newline).

    Returns:
        str.

    Example:
        >>> replace_blocks("<!-- regen: x -->\\nold\\n<!-- /regen -->\\n", {"x": "new\\n"})
        '<!-- regen: x -->\\nnew\\n<!-- /regen -->\\n'
    """
    def sub(match):
        name = match.group(1)
        if name not in bodies:
            return match.group(0)
        return f"<!-- regen: {name} -->\n{bodies[name]}<!-- /regen -->"

    return BLOCK.sub(sub, text)


def fenced(text):
    """``text`` as a Markdown code block body (trailing spaces removed).

    Example:
        >>> fenced("a  \\nb\\n")
        '```\\na\\nb\\n```\\n'
    """
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "```\n" + "\n".join(lines) + "\n```\n"
