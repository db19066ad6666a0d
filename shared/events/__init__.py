"""Event contracts: the CloudEvents envelope and the versioned payload of every routing key."""

from shared.events.alarm import (
    Acknowledgement,
    AcknowledgementRequested,
    AckVia,
    AlarmEvent,
    AlarmKey,
    AlarmState,
    AlarmTransition,
    OwnerRef,
)
from shared.events.envelope import BROADCAST_KEYS, ROUTING_KEYS, CloudEvent, derived_id, make_event, payload_model
from shared.events.evaluation import (
    AlarmSummary,
    CertificateInfo,
    ChainInfo,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    PresentedCertificate,
    RevocationInfo,
    SecurityCap,
    SecurityInfo,
    TlsSummary,
    TransparencyInfo,
)
from shared.events.notification import NotificationResult
from shared.events.observation import CipherSuiteFacts, NegotiatedTls, Observation, ObservationError, TlsFacts
from shared.events.report import ReportPublished
from shared.events.scan import ScanRequested
from shared.events.target import Target, TargetRef

__all__ = [
    "BROADCAST_KEYS",
    "ROUTING_KEYS",
    "AckVia",
    "Acknowledgement",
    "AcknowledgementRequested",
    "AlarmEvent",
    "AlarmKey",
    "AlarmState",
    "AlarmSummary",
    "AlarmTransition",
    "CertificateInfo",
    "ChainInfo",
    "CipherSuiteFacts",
    "CloudEvent",
    "Evaluation",
    "ExpiryInfo",
    "Finding",
    "KeyInfo",
    "NegotiatedTls",
    "NotificationResult",
    "Observation",
    "ObservationError",
    "OwnerRef",
    "PresentedCertificate",
    "ReportPublished",
    "RevocationInfo",
    "ScanRequested",
    "SecurityCap",
    "SecurityInfo",
    "Target",
    "TargetRef",
    "TlsFacts",
    "TlsSummary",
    "TransparencyInfo",
    "derived_id",
    "make_event",
    "payload_model",
]
