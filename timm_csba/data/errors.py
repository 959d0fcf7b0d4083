"""The data package's error: bad dataset input, reported as one line that names the problem and the fix."""


class DatasetError(ValueError):
    """Bad dataset input; the message names the problem and how to fix it."""


def error_line(error: Exception) -> str:
    """The one-line message of an error, also when a DataLoader worker raised it (torch then wraps the worker's
    traceback into the message; its last line is the original error)."""
    text = str(error).strip()
    if 'Original Traceback' not in text:
        return text
    return text.splitlines()[-1].split(': ', 1)[-1]
