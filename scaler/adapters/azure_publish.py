"""Republishing Pexip's call counts to Azure Monitor as a custom metric.

So that Azure dashboards and alerts see the number the daemon acts on: namespace ``Pexip/CVI``,
metric ``ActiveCalls``, one series per instance (dimension ``VMName``), sent through the
custom-metrics ingestion API (``POST https://{region}.monitoring.azure.com{resourceId}/metrics``,
token audience ``https://monitoring.azure.com/``, role *Monitoring Metrics Publisher*).

Uses ``azure-core``'s pipeline with the process credential; the pipeline's own retry policy is
the only retry. Publishing is best effort: a failure is reported to the caller as an
``AdapterError`` and never holds a pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    ContentDecodePolicy,
    HeadersPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest

from scaler.adapters.azure import translate
from scaler.config_model import Config
from scaler.errors import PermanentError

NAMESPACE = "Pexip/CVI"
METRIC = "ActiveCalls"
DIMENSION = "VMName"


def custom_metric_body(
    *, at: float, values: Sequence[tuple[str, float]], namespace: str = NAMESPACE
) -> dict[str, Any]:
    """The ingestion API's body: one series per instance for the minute of ``at``."""
    moment = datetime.fromtimestamp(at, UTC).replace(second=0, microsecond=0)
    return {
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "baseData": {
                "metric": METRIC,
                "namespace": namespace,
                "dimNames": [DIMENSION],
                "series": [
                    {"dimValues": [name], "min": v, "max": v, "sum": v, "count": 1}
                    for name, v in values
                ],
            }
        },
    }


class AzureMetricPublisher:
    """Posts custom metric values; one pipeline client per regional endpoint."""

    def __init__(self, config: Config, credential: TokenCredential) -> None:
        self._config = config
        self._credential = credential
        self._clients: dict[str, PipelineClient[HttpRequest, Any]] = {}

    def _client(self, endpoint: str) -> PipelineClient[HttpRequest, Any]:
        client = self._clients.get(endpoint)
        if client is None:
            azure = self._config.azure
            scope = self._config.pexip.publish_audience.rstrip("/") + "/.default"
            kwargs: dict[str, Any] = {
                "connection_timeout": azure.timeout_seconds,
                "read_timeout": azure.timeout_seconds,
            }
            if azure.ca_bundle is not None:
                kwargs["connection_verify"] = str(azure.ca_bundle)
            client = PipelineClient(
                base_url=endpoint,
                policies=[
                    HeadersPolicy(),
                    UserAgentPolicy(sdk_moniker="cvi-autoscaler"),
                    RetryPolicy(retry_total=azure.retry_total),
                    BearerTokenCredentialPolicy(self._credential, scope),
                    ContentDecodePolicy(),
                ],
                **kwargs,
            )
            self._clients[endpoint] = client
        return client

    def publish(
        self, *, resource_id: str, location: str, at: float, values: Sequence[tuple[str, float]]
    ) -> None:
        """Send this minute's per-instance calls for ``resource_id``."""
        if not values:
            return
        endpoint = self._config.pexip.publish_endpoint(location)
        request = HttpRequest(
            "POST",
            f"{endpoint}{resource_id}/metrics",
            json=custom_metric_body(at=at, values=values),
        )
        operation = "metrics.publish"
        try:
            response = self._client(endpoint).send_request(request)
            response.raise_for_status()
        except AzureError as exc:
            raise translate(exc, operation) from exc
        if response.status_code not in (200, 201, 202, 204):
            raise PermanentError(
                f"{operation}: unexpected HTTP {response.status_code}", operation=operation
            )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
