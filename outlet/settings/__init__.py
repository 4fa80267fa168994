"""
outlet's settings: every knob read from the environment, one module per concern.

The defaults are the ones `make run` needs on a fresh machine (SQLite, an
embedded filesystem broker, localstripe, mail captured on loopback). With
DEBUG off, unsafe values stop startup with a message naming the variable;
see the configuration table in README.md. Each part imports by name what it
needs from another, so their order here does not matter.
"""

from outlet.settings.data import *  # noqa: F403
from outlet.settings.environment import *  # noqa: F403
from outlet.settings.language import *  # noqa: F403
from outlet.settings.mail import *  # noqa: F403
from outlet.settings.newsletters import *  # noqa: F403
from outlet.settings.operations import *  # noqa: F403
from outlet.settings.payments import *  # noqa: F403
from outlet.settings.security import *  # noqa: F403
from outlet.settings.web import *  # noqa: F403
