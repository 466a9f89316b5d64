"""AWS API Gateway access logs in the CLF preset of the API Gateway console.

`$context.identity.sourceIp $context.identity.caller $context.identity.user
[$context.requestTime]"$context.httpMethod $context.resourcePath $context.protocol"
$context.status $context.responseLength $context.requestId $context.extendedRequestId` — note
there is no space between `]` and `"`. The "path" AWS logs here is the resource template
(`/pets/{petId}`), not the concrete path; it goes to `path` as logged.
"""

from __future__ import annotations

from .base import register
from .template import Template, TemplateFormat

register(TemplateFormat(
    "apigateway_clf",
    "AWS API Gateway CLF: sourceIp caller user [requestTime]\"method resourcePath protocol\" status length requestId extendedRequestId",
    [Template('nginx:$remote_addr $caller $remote_user [$time_local]"$request" $status $body_bytes_sent'
              ' $request_id $extended_request_id')],
))
