"""Exception and warning classes of the package."""


class LCEPluginsWarning(UserWarning):
    """Misuse that the package can recover from, e.g. an option that has no effect."""


class DataWarning(LCEPluginsWarning):
    """Recoverable problems in the data, e.g. events that could not be fitted."""
