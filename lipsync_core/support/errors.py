"""The one exception type for expected user errors."""


class LipsyncError(Exception):
    """An expected failure caused by the input, the environment or a download.

    The message is one line that says what was wrong and what to do. Front ends print it
    without a traceback and exit non-zero; any other exception is a bug and keeps its traceback.
    """
