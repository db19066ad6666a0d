"""The `certmon.yaml` schema, its loading with path-precise errors, and the resolution rules (which server,
certificate rule, owner and policy apply to a target or certificate)."""

from shared.config.loader import ConfigError, ConfigProblem, load_app_config, load_config, parse_config
from shared.config.reports import CompliancePolicy, CustomReport, ReportFilter, Reports
from shared.config.resolve import CertificateFacts, Policy, TargetTags, resolve_owners, resolve_policy, server_for
from shared.config.schema import (
    CertificateRule,
    CertmonConfig,
    DeliveryRetry,
    EmailChannel,
    HistoryRetention,
    Owner,
    Reminders,
    ServerEntry,
    SnmpReceiver,
    TargetEntry,
    Thresholds,
    WebhookChannel,
    parse_duration,
)

__all__ = [
    "CertificateFacts",
    "CertificateRule",
    "CertmonConfig",
    "CompliancePolicy",
    "ConfigError",
    "ConfigProblem",
    "CustomReport",
    "DeliveryRetry",
    "EmailChannel",
    "HistoryRetention",
    "Owner",
    "Policy",
    "Reminders",
    "ReportFilter",
    "Reports",
    "ServerEntry",
    "SnmpReceiver",
    "TargetEntry",
    "TargetTags",
    "Thresholds",
    "WebhookChannel",
    "load_app_config",
    "load_config",
    "parse_config",
    "parse_duration",
    "resolve_owners",
    "resolve_policy",
    "server_for",
]
