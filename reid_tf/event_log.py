"""The event log of a training run: messages to stderr and ``train.log``."""

import sys


class EventLog:
    """Messages to stderr and, once the run directory is known, its ``train.log``.

    Messages logged before :meth:`attach` are kept and written to
    ``train.log`` when the run directory is attached.

    Args:
        quiet: print only messages logged with ``always=True``.

    Example:
        >>> log = EventLog(quiet=True)
        >>> log("not printed")
        >>> log.pending
        ['not printed']
    """

    def __init__(self, quiet=False):
        self.run = None
        self.quiet = quiet
        self.pending = []

    def attach(self, run):
        """Starts writing to ``run``'s ``train.log`` (earlier messages included).

        Args:
            run: :class:`reid_tf.run_dir.RunDir`.

        Returns:
            None.
        """
        self.run = run
        for message in self.pending:
            run.log_event(message)
        self.pending = []

    def __call__(self, message, always=False):
        if always or not self.quiet:
            print(message, file=sys.stderr, flush=True)
        if self.run is not None:
            self.run.log_event(message)
        else:
            self.pending.append(message)
