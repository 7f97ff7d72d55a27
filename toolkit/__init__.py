"""optml toolkit: the runtime that runs inside bring-your-own-algorithm images.

Nothing is read or created at import time; entry points build a :class:`~toolkit.settings.Settings`
from the environment once and pass it (and the :class:`~toolkit.layout.Layout` it names) on.
"""

__version__ = "0.1.0"
