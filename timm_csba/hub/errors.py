"""The Hub code's one error: a run or staged folder that cannot be exported, published or cached."""


class HubError(ValueError):
    """A run or staged folder that cannot be exported, published or cached; the message names the fix."""
