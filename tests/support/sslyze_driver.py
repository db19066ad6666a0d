"""Run sslyze's certificate_info scan over many servers; a script for sslyze's own virtualenv, never imported.

Run as `<.venv-sslyze>/bin/python sslyze_driver.py` (see `tests.support.sslyze_env`). Reads a JSON list of jobs
on stdin, `{"host": "127.0.0.1", "port": 8443, "sni": "localhost", "ca_file": "/path/root.pem"}`, scans them all in
one sslyze `Scanner` with `ca_file` as the custom trust store, and writes one JSON object per job, in job order, one
per line:

    {"port": ..., "error": str | null,            # connectivity or scan failure (then the rest is null)
     "custom_ca_valid": bool, "custom_ca_error": str | null,   # path validation against the custom CA file
     "received_chain_has_valid_order": bool | null, "leaf_not_valid_after": ISO 8601 UTC}

Only the standard library and sslyze are imported: this runs with sslyze's pinned `cryptography`, not certmon's.
"""

import json
import sys
from pathlib import Path
from typing import Any

from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import ScanCommandsExtraArguments, ServerScanRequest, ServerScanResult
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

#: The name sslyze gives the trust store built from `custom_ca_file`.
CUSTOM_STORE = "Supplied CA file"


def request(job: dict[str, Any]) -> ServerScanRequest:
    """The certificate_info scan of one job's server, trusting only its CA file."""
    return ServerScanRequest(
        server_location=ServerNetworkLocation(job["sni"], job["port"], ip_address=job["host"]),
        network_configuration=ServerNetworkConfiguration(job["sni"], network_timeout=5, network_max_retries=1),
        scan_commands={ScanCommand.CERTIFICATE_INFO},
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(job["ca_file"]))
        ),
    )


def verdict(port: int, result: ServerScanResult) -> dict[str, Any]:
    """What certmon's agreement test compares: custom-store validation, chain order and the leaf's expiry."""
    info = result.scan_result.certificate_info if result.scan_result else None
    if info is None or info.status != ScanCommandAttemptStatusEnum.COMPLETED or info.result is None:
        trace = info.error_trace if info is not None else None
        error = result.connectivity_error_trace or trace
        return {"port": port, "error": "".join(error.format()) if error else "no certificate_info result"}
    deployment = info.result.certificate_deployments[0]
    (custom,) = [r for r in deployment.path_validation_results if r.trust_store.name == CUSTOM_STORE]
    return {
        "port": port,
        "error": None,
        "custom_ca_valid": custom.was_validation_successful,
        "custom_ca_error": custom.validation_error,
        "received_chain_has_valid_order": deployment.received_chain_has_valid_order,
        "leaf_not_valid_after": deployment.received_certificate_chain[0].not_valid_after_utc.isoformat(),
    }


def main() -> None:
    """Scan every job on stdin in one scanner and print each verdict as a JSON line, in job order."""
    jobs: list[dict[str, Any]] = json.load(sys.stdin)
    requests = [request(job) for job in jobs]
    scanner = Scanner()
    scanner.queue_scans(requests)
    by_uuid = {result.uuid: result for result in scanner.get_results()}
    for job, scan in zip(jobs, requests, strict=True):
        print(json.dumps(verdict(job["port"], by_uuid[scan.uuid])), flush=True)


if __name__ == "__main__":
    main()
