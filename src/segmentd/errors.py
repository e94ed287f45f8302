"""Domain errors: a few category bases, each concrete error with a fixed message.

Only the stdlib is imported here.  ``api.faults`` is the one place that maps the
categories to HTTP statuses; messages are templates filled with caller-supplied
values only, never with driver or SQL text.
"""

from __future__ import annotations

from typing import Any


class SegmentdError(Exception):
    """Base of every error the service raises on purpose."""

    message = "An unknown error occurred."

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        try:
            self.msg = self.message % kwargs
        except (KeyError, TypeError, ValueError):
            self.msg = type(self).message
        super().__init__(self.msg)

    @property
    def type_name(self) -> str:
        return type(self).__name__


# Categories -----------------------------------------------------------------


class BadRequest(SegmentdError):
    message = "Bad %(resource)s request: %(msg)s."


class NotAuthenticated(SegmentdError):
    message = "Authentication required."


class Forbidden(SegmentdError):
    message = "Not authorized."


class NotFound(SegmentdError):
    message = "An unknown resource could not be found."


class Conflict(SegmentdError):
    message = "A conflict occurred attempting to process the request."


class InUse(Conflict):
    message = "The resource is in use."


class PreconditionFailed(SegmentdError):
    message = "Precondition failed."


class PayloadTooLarge(SegmentdError):
    message = "Request body is too large."


class RateLimited(SegmentdError):
    message = "Too many requests, retry later."

    def __init__(self, retry_after: int = 1, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class ServiceUnavailable(SegmentdError):
    message = "The service is temporarily unavailable, retry later."

    def __init__(self, retry_after: int = 1, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


# Input ------------------------------------------------------------------------


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


class UnrecognizedAttribute(BadRequest):
    message = "Unrecognized attribute(s) '%(names)s'"


class InvalidQuery(BadRequest):
    message = "Invalid query parameter: %(error_message)s."


class MarkerNotFound(BadRequest):
    message = "Marker %(marker)s could not be found."


class TooManyAgents(PayloadTooLarge):
    message = "A bulk report may carry at most %(maximum)s agents."


# Not found --------------------------------------------------------------------


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SegmentNotFound(NotFound):
    message = "Segment %(segment_id)s could not be found."


class AgentNotFound(NotFound):
    message = "Agent %(id)s could not be found."


class ResourceNotFound(NotFound):
    message = "The resource could not be found."


# Conflicts --------------------------------------------------------------------


class SegmentationIdInUse(InUse):
    message = (
        "Unable to create the network. The %(network_type)s segmentation ID "
        "%(segmentation_id)s on physical network %(physical_network)s is in use."
    )


class FlatNetworkInUse(InUse):
    message = (
        "Unable to create the flat network. Physical network %(physical_network)s is in use."
    )


class SegmentInUse(InUse):
    message = "Segment %(segment_id)s cannot be deleted: %(reason)s."


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to %(expected)s, but current revision is %(current)s"


class NoNetworkAvailable(ServiceUnavailable):
    message = (
        "Unable to create the network. No %(network_type)s segmentation ID is "
        "available in the configured ranges."
    )
