"""The one exception type users see: a sentence that says what to change."""


class WarpschedError(Exception):
    """A user-facing error. The message is one sentence naming the problem and the fix.

    The CLI prints it without a traceback and exits with code 2.
    """


class InputError(WarpschedError):
    """Malformed or inconsistent input: a graph, a machine model, a schedule file, a preset."""


class Interrupted(WarpschedError):
    """The user stopped a search (Ctrl-C) before it found any schedule."""


class InfeasibleError(WarpschedError):
    """No schedule exists within the searched initiation intervals; the message names the culprit."""
