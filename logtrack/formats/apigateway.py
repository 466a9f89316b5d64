"""`apigateway_json`: Amazon API Gateway access logs in JSON (REST and HTTP APIs).

The keys are those AWS documents for `$context` variables: `requestTime` (CLF) or
`requestTimeEpoch`, `ip`, `httpMethod`, `path` (HTTP API), `resourcePath` (REST: the route
template such as `/pets/{petId}`, not the concrete path — kept as the path, and in
`fields.resource_path`) or `routeKey` (`GET /pets`), `status` and `responseLength` as strings,
`protocol`, `domainName` (the host) and `requestId`.
"""

from __future__ import annotations

from .base import register
from .jsonmap import APIGATEWAY, JsonFormat

register(JsonFormat(
    "apigateway_json",
    "AWS API Gateway JSON access log ($context: requestTime, ip, httpMethod, resourcePath/routeKey, status)",
    APIGATEWAY,
))
