"""Progress on stderr: stage lines and counters with a rate and an ETA.

On a terminal a counter redraws one line (at most 10 times a second);
elsewhere (logs, pipes, tests) it prints a line at most every ``interval``
seconds and a final line when the work took longer than 2 seconds. Nothing is
printed when ``enabled`` is false.
"""

import sys
import time


def format_duration(seconds):
    """``seconds`` as ``12s``, ``3m05s`` or ``2h07m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """A counter line: ``desc: done/total (pct%, rate/s, ETA 1m02s)``.

    Args:
        total: number of steps expected, or None when unknown.
        desc: a short label.
        enabled: print anything at all.
        stream: where to print (default ``sys.stderr``).
        interval: seconds between lines when the stream is not a terminal.
        prefix: text put before every line (a program name, say).
    """

    def __init__(self, total, desc, *, enabled=True, stream=None, interval=30.0, prefix=""):
        self.total = None if total is None else int(total)
        self.desc = desc
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval = float(interval)
        self.prefix = prefix
        self.done = 0
        self.tty = _isatty(self.stream)
        self.start = time.monotonic()
        self.last = self.start
        self._open = False
        self._closed = False

    def line(self):
        """The current counter text (without prefix or newline)."""
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        rate_text = f"{rate:.3g}/s" if rate < 100 else f"{rate:.0f}/s"
        if self.total:
            pct = 100.0 * self.done / self.total
            text = f"{self.desc}: {self.done}/{self.total} ({pct:.0f}%, {rate_text}"
            if 0 < self.done < self.total and rate > 0:
                text += f", ETA {format_duration((self.total - self.done) / rate)}"
            elif self.done >= self.total:
                text += f", {format_duration(elapsed)}"
            return text + ")"
        return f"{self.desc}: {self.done} ({rate_text}, {format_duration(elapsed)})"

    def update(self, n=1):
        """Advance by ``n`` steps."""
        self.set(self.done + int(n))

    def set(self, done):
        """Set the number of steps done."""
        self.done = int(done)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < (0.1 if self.tty else self.interval):
            return
        self.last = now
        self._write(final=False)

    def _write(self, final):
        text = self.prefix + self.line()
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
            self._open = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        """Print the final line (on a terminal always; elsewhere after 2 s of work)."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        if self.tty or time.monotonic() - self.start > 2.0:
            self._write(final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Reporter:
    """Stage lines of a long job, ``prog: prefix message``, and counters for its stages.

    Args:
        prog: program name put before every line ("" for none).
        enabled: print anything at all (``--quiet`` turns it off).
        stream: where to print (default ``sys.stderr``).
        interval: seconds between counter lines when the stream is not a terminal.
    """

    def __init__(self, prog="", *, enabled=True, stream=None, interval=10.0):
        self.prog = prog
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.prefix = ""
        self._counter = None

    def _head(self):
        return (f"{self.prog}: " if self.prog else "") + self.prefix

    def say(self, message):
        """Print one line (ending an open counter line first)."""
        if not self.enabled:
            return
        self._end_counter()
        self.stream.write(self._head() + message + "\n")
        self.stream.flush()

    def count(self, what, done, total):
        """Report ``done`` of ``total`` for the stage ``what`` (rate and ETA)."""
        if not self.enabled:
            return
        if self._counter is None or self._counter.desc != what or done < self._counter.done:
            self._end_counter()
            self._counter = Progress(total, what, stream=self.stream, interval=self.interval,
                                     prefix=self._head())
        self._counter.set(done)
        if done >= total:
            self._end_counter()

    def bar(self, total, desc):
        """A :class:`Progress` counter printed with this reporter's head."""
        return Progress(total, desc, enabled=self.enabled, stream=self.stream,
                        interval=self.interval, prefix=self._head())

    def _end_counter(self):
        if self._counter is not None:
            self._counter.close()
            self._counter = None
