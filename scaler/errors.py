"""One error hierarchy for the daemon.

::

    ScalerError
    ├── ConfigError          bad config or usage: the CLI exits 2, nothing is written to Azure
    └── AdapterError         an outside system failed; carries the pool (if any) and the operation
        ├── TransientError   worth retrying later (429, 5xx, timeouts, connection errors):
        │   │                the pool holds this tick, the loop keeps going
        │   └── CapacityError  Azure has no capacity for the VM size now (AllocationFailed,
        │                    ZonalAllocationFailed, SkuNotAvailable, Overconstrained(Zonal)-
        │                    AllocationRequest…): not quota; the pool's scale-ups back off
        └── PermanentError   retrying will not help (401/403/404, quota refusals, malformed
                             answers): the pool holds and an alert-level event is logged

Adapters translate their library's exceptions into these (``raise … from exc``); nothing above the
adapters ever sees an ``azure.*`` exception.
"""

from __future__ import annotations


class ScalerError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(ScalerError):
    """The configuration (file, environment override or command line) is invalid.

    ``problems`` holds one line per problem, each naming the key path and the bad value.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class AdapterError(ScalerError):
    """An outside system (Azure, Pexip) failed to answer usefully."""

    def __init__(
        self, message: str, *, operation: str = "", code: str = "", status: int | None = None
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code
        self.status = status


class TransientError(AdapterError):
    """Likely to succeed later: throttling, server errors, timeouts, lost connections."""


class PermanentError(AdapterError):
    """Will not succeed by retrying: authorisation, missing resources, refusals, bad answers."""


CAPACITY_ERROR_CODES = frozenset(
    {
        # https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/allocation-failure
        "AllocationFailed",
        "ZonalAllocationFailed",
        # https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-sku-not-available
        "SkuNotAvailable",
        # https://learn.microsoft.com/azure/cloud-services/cloud-services-troubleshoot-overconstrained-allocation-request
        "OverconstrainedAllocationRequest",
        # the zonal form of the same refusal (a zone-pinned request that no cluster of the zone
        # can place), as Azure's allocation guidance lists it beside ZonalAllocationFailed
        "OverconstrainedZonalAllocationRequest",
    }
)
"""Azure error codes that mean "no capacity for this VM size here, now" — not a quota refusal
(``OperationNotAllowed`` … "exceeding approved … quota"), and not the caller's fault. Codes of
the same families that Azure adds (``is_capacity_code``) are taken as capacity errors too:
backing off is the safe reading of a refusal to allocate."""


def is_capacity_code(code: str) -> bool:
    """Whether an ARM error code says Azure could not allocate the VM size now: one of
    ``CAPACITY_ERROR_CODES``, or a relative of them (``…AllocationFailed…``,
    ``Overconstrained…AllocationRequest``, ``…SkuNotAvailable``)."""
    if code in CAPACITY_ERROR_CODES:
        return True
    low = code.lower()
    return (
        "allocationfailed" in low
        or (low.startswith("overconstrained") and low.endswith("allocationrequest"))
        or low.endswith("skunotavailable")
    )


class CapacityError(TransientError):
    """Azure could not allocate the VM size (``code`` says which of ``CAPACITY_ERROR_CODES``).

    Capacity comes back by itself, so it is transient; retrying every tick only repeats the
    failure, so the daemon backs the pool's scale-ups off (``Reason.CAPACITY_UNAVAILABLE``).
    """
