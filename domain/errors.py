"""The domain's failures; `api/` maps each class to one HTTP status in one table."""


class DomainError(Exception):
    """Base of every error the domain raises on purpose; the message is shown to the user."""


class InvalidRequest(DomainError):
    """The request itself is malformed (bad UID, unknown attribute, bad parameter value)."""


class NotFound(DomainError):
    """The study, series or instance asked for does not exist."""


class NotAcceptable(DomainError):
    """The representation asked for cannot be produced."""


class UnsupportedMediaType(DomainError):
    """The request body has a media type this transaction does not take."""


class PayloadTooLarge(DomainError):
    """The request body exceeds the configured maximum."""


class Conflict(DomainError):
    """The resource already exists, or is in a state that forbids the change."""
