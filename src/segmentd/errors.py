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

    def __init__(
        self,
        retry_after: int = 1,
        limit: int | None = None,
        window: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.retry_after = retry_after
        # For the RateLimit-* headers: the refused bucket's size and window.
        self.limit = limit
        self.window = window
        super().__init__(**kwargs)


class ServiceUnavailable(SegmentdError):
    message = "The service is temporarily unavailable, retry later."

    def __init__(self, retry_after: int = 1, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class RateLimiterUnavailable(ServiceUnavailable):
    # The limiter's shared storage is unreachable and the service fails closed.
    message = "The service is temporarily unavailable, retry later."


class RequestTimeout(ServiceUnavailable):
    message = (
        "The request did not complete in time and was abandoned; nothing was changed. Retry later."
    )


# Input ------------------------------------------------------------------------


class InvalidInput(BadRequest):
    message = "Invalid input for operation: %(error_message)s."


class SegmentsSetInConjunctionWithProviders(BadRequest):
    # neutron_lib.exceptions.multiprovidernet.
    message = "Segments and provider values cannot both be set."


class SegmentsContainDuplicateEntry(InvalidInput):
    message = "Duplicate segment entry in request."


class UnrecognizedAttribute(BadRequest):
    message = "Unrecognized attribute(s) '%(names)s'"


class InvalidQuery(BadRequest):
    message = "Invalid query parameter: %(error_message)s."


class MarkerNotFound(BadRequest):
    message = "Marker %(marker)s could not be found."


class RequestBodyTooLarge(PayloadTooLarge):
    message = "Request body is larger than %(maximum)s bytes."


class TooManyAgents(PayloadTooLarge):
    message = "A bulk report may carry at most %(maximum)s agents."


class TooManyBulkItems(PayloadTooLarge):
    message = "A bulk create may carry at most %(maximum)s %(collection)s."


class RequestBodyIncomplete(BadRequest):
    message = "The request body ended before its announced length."


class TooManyPhysicalNetworks(BadRequest):
    message = "Agent on host %(host)s reports more than %(maximum)s physical networks."


# Not found --------------------------------------------------------------------


class NetworkNotFound(NotFound):
    message = "Network %(net_id)s could not be found."


class SegmentNotFound(NotFound):
    message = "Segment %(segment_id)s could not be found."


class NetworkSegmentRangeNotFound(NotFound):
    message = "Network Segment Range %(range_id)s could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet %(subnet_id)s could not be found."


class ExtensionNotFound(NotFound):
    message = "Extension with alias %(alias)s does not exist"


class TagNotFound(NotFound):
    message = "Tag %(tag)s could not be found."


class AgentNotFound(NotFound):
    message = "Agent %(id)s could not be found."


# Conflicts --------------------------------------------------------------------


class SegmentationIdInUse(InUse):
    message = (
        "Unable to create the network. The %(network_type)s segmentation ID "
        "%(segmentation_id)s on physical network %(physical_network)s is in use."
    )


class VlanIdInUse(SegmentationIdInUse):
    # neutron_lib.exceptions.VlanIdInUse: the type and wording clients match on.
    message = (
        "Unable to create the network. The VLAN %(vlan_id)s on physical network "
        "%(physical_network)s is in use."
    )


class TunnelIdInUse(SegmentationIdInUse):
    # neutron_lib.exceptions.TunnelIdInUse (VXLAN, Geneve, GRE).
    message = "Unable to create the network. The tunnel ID %(tunnel_id)s is in use."


class FlatNetworkInUse(InUse):
    message = "Unable to create the flat network. Physical network %(physical_network)s is in use."


class SegmentInUse(InUse):
    message = "Segment %(segment_id)s cannot be deleted: %(reason)s."


class OverQuota(Conflict):
    message = "Quota exceeded for resources: %(overs)s."


class NetworkSegmentRangeOverlaps(Conflict):
    message = "Network segment range overlaps with range(s) with id %(range_id)s"


class NetworkSegmentRangeReferencedByProject(InUse):
    message = (
        "Network Segment Range %(range_id)s is referenced by one or more tenant "
        "networks: IDs in the removed part are in use."
    )


class NetworkSegmentRangeDefaultReadOnly(BadRequest):
    message = "Network Segment Range %(range_id)s is a default segment range which could not be updated or deleted."


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to %(expected)s, but current revision is %(current)s"


class NoNetworkAvailable(ServiceUnavailable):
    message = (
        "Unable to create the network. No %(network_type)s segmentation ID is "
        "available in the configured ranges."
    )


# Identity -----------------------------------------------------------------------


class InvalidCredentials(NotAuthenticated):
    # One message for an unknown user, a wrong password, a disabled user and
    # a project the user has no role on: nothing to enumerate.
    message = "The request you have made requires authentication."


class InvalidToken(NotAuthenticated):
    message = "Authentication required: the token is missing, invalid, expired or revoked."


class SessionExpired(NotAuthenticated):
    message = "Please log in: the console session is missing, expired or ended."


class FormRefused(Forbidden):
    # A console form without its session's CSRF token, or sent from another site.
    message = "The form was refused (sent from another site, or a stale page): reload and retry."


class IdentityUnavailable(ServiceUnavailable):
    # The external Keystone could not validate a token (down, slow, or it
    # refused this service's own credentials): never a 401, never let through.
    message = "The identity service is temporarily unavailable, retry later."

    def __init__(self, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(retry_after=retry_after, **kwargs)


class ProjectRequired(BadRequest):
    # A token scoped to the system or a domain names no project to own the resource.
    message = "Failed to parse request. Required attribute 'project_id' not specified"


class TokenNotFound(NotFound):
    message = "Could not find token."


class ProjectNotFound(NotFound):
    message = "Could not find project: %(project)s."


class UserNotFound(NotFound):
    message = "Could not find user: %(user)s."


class RoleNotFound(NotFound):
    message = "Could not find role: %(role)s."


class ProjectExists(Conflict):
    message = "Project %(name)s already exists."


class UserExists(Conflict):
    message = "User %(name)s already exists."


class ProjectHasResources(InUse):
    message = "Project %(project)s still owns %(what)s; delete them first."


class LastAdmin(Conflict):
    message = (
        "%(what)s would remove the last admin role assignment; grant admin to another user first."
    )


class IdentityAdminOnly(Forbidden):
    # The Keystone routes answer only what openstackclient's read-only
    # commands ask; everything else is the operator's ``segmentd`` command.
    message = "%(action)s is for admins here; an operator can run `segmentd %(command)s`."


class IdentityNotManagedHere(Forbidden):
    message = "%(action)s is not available over this API; use `segmentd %(command)s` on the server."


# Admin commands (never raised by the API) ------------------------------------


class DatabaseNotReady(SegmentdError):
    message = "%(reason)s"


# Subnets and routed networks ---------------------------------------------------
# Names and wording are Neutron's (neutron_lib.exceptions and
# neutron/services/segments/exceptions.py), so clients see familiar types.


class DNSNameServersExhausted(BadRequest):
    message = (
        "Unable to complete operation for %(subnet_id)s. "
        "The number of DNS nameservers exceeds the limit %(quota)s."
    )


class HostRoutesExhausted(BadRequest):
    message = (
        "Unable to complete operation for %(subnet_id)s. "
        "The number of host routes exceeds the limit %(quota)s."
    )


class InvalidSubnetServiceType(InvalidInput):
    message = "Subnet service type %(service_type)s does not correspond to a valid device owner."


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class OverlappingAllocationPools(Conflict):
    message = (
        "Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet %(subnet_cidr)s."
    )


class GatewayConflictWithAllocationPools(InUse):
    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class NetworkIdsDontMatch(BadRequest):
    message = (
        "The subnet's network id, '%(subnet_network)s', doesn't match the network_id of "
        "segment '%(segment_id)s'"
    )


class SubnetsNotAllAssociatedWithSegments(Conflict):
    # Neutron answers 400 here; issue 5 asks for 409, a state conflict.
    message = (
        "All of the subnets on network '%(network_id)s' must either all be associated "
        "with segments or all not associated with any segment: %(reason)s."
    )


class SubnetSegmentAssociationChangeNotAllowed(BadRequest):
    message = (
        "A subnet that is already associated with a segment cannot have its segment "
        "association changed."
    )


class NoUpdateSubnetWhenMultipleSegmentsOnNetwork(BadRequest):
    message = (
        "The network '%(network_id)s' has multiple segments, it is only possible to associate "
        "an existing subnet with a segment on networks with a single segment."
    )
