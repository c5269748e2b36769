"""The use cases of Feedback Studio, one function each, called alike by the pages, the command line and the
HTTP API: each checks the caller's role, acts, and records the audit event (and prediction rows).

``Studio`` holds what they act on; ``Caller`` says who asks and through which door.
"""

from core.services.studio import CHANNEL_WORDS, Caller, Channel, Studio

__all__ = ["CHANNEL_WORDS", "Caller", "Channel", "Studio"]
