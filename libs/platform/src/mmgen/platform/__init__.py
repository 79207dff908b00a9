"""mmgen.platform: the small service kit every Multimedia Gen service uses.

Settings, the app factory (problem+json errors, body limit, health, metrics, tracing, JSON
logs), JWT authentication with roles and declared purposes, audited refusals, pagination.
"""

from mmgen.platform.app import PlatformApp, create_app, serve
from mmgen.platform.denials import (
    AccessDenialRecorder,
    AggregatingDenialRecorder,
    DenialReason,
    InMemoryDenialRecorder,
    LoggingDenialRecorder,
    record_access_denial,
)
from mmgen.platform.errors import (
    BadRequestError,
    ConfigurationError,
    PlatformError,
    ProblemError,
    RequestBodyTooLargeError,
    ServiceUnavailableError,
)
from mmgen.platform.health import ReadinessCheck, kafka_check, mongo_check
from mmgen.platform.limits import body_limit
from mmgen.platform.pagination import (
    CursorPage,
    InvalidCursorError,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
    pagination,
)
from mmgen.platform.problems import PROBLEM_JSON, ProblemSpec, problem_response
from mmgen.platform.settings import (
    Environment,
    InsecureSecretError,
    OtelSettings,
    ServiceSettings,
    dev_secret,
    is_development_secret,
    key_bytes,
)

__all__ = [
    "PROBLEM_JSON",
    "AccessDenialRecorder",
    "AggregatingDenialRecorder",
    "BadRequestError",
    "ConfigurationError",
    "CursorPage",
    "DenialReason",
    "Environment",
    "InMemoryDenialRecorder",
    "InsecureSecretError",
    "InvalidCursorError",
    "LoggingDenialRecorder",
    "OtelSettings",
    "Page",
    "PageRequest",
    "PlatformApp",
    "PlatformError",
    "ProblemError",
    "ProblemSpec",
    "ReadinessCheck",
    "RequestBodyTooLargeError",
    "ServiceSettings",
    "ServiceUnavailableError",
    "body_limit",
    "create_app",
    "decode_cursor",
    "dev_secret",
    "encode_cursor",
    "is_development_secret",
    "kafka_check",
    "key_bytes",
    "mongo_check",
    "pagination",
    "problem_response",
    "record_access_denial",
    "serve",
]
