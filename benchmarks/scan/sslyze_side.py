"""The sslyze side of the benchmark, run with the sslyze virtualenv's Python (sslyze 6 API).

`sslyze_side.py ENDPOINTS.json` scans every endpoint with certificate_info and the cipher suites of every
protocol version, and prints one JSON line: seconds, and per port the accepted suites per version and the
connections sslyze opened (one per suite tested, plus certificate info and the connectivity test).
"""

import json
import sys
import time

from sslyze import (
    ScanCommand,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

COMMANDS = {
    ScanCommand.SSL_2_0_CIPHER_SUITES: ("SSLv2", "ssl_2_0_cipher_suites"),
    ScanCommand.SSL_3_0_CIPHER_SUITES: ("SSLv3", "ssl_3_0_cipher_suites"),
    ScanCommand.TLS_1_0_CIPHER_SUITES: ("TLSv1.0", "tls_1_0_cipher_suites"),
    ScanCommand.TLS_1_1_CIPHER_SUITES: ("TLSv1.1", "tls_1_1_cipher_suites"),
    ScanCommand.TLS_1_2_CIPHER_SUITES: ("TLSv1.2", "tls_1_2_cipher_suites"),
    ScanCommand.TLS_1_3_CIPHER_SUITES: ("TLSv1.3", "tls_1_3_cipher_suites"),
}


def main() -> None:
    """Scan and print."""
    with open(sys.argv[1]) as handle:
        ports = [endpoint["port"] for endpoint in json.load(handle)["endpoints"]]
    requests = [
        ServerScanRequest(
            server_location=ServerNetworkLocation(hostname="localhost", port=port, ip_address="127.0.0.1"),
            network_configuration=ServerNetworkConfiguration(tls_server_name_indication="localhost"),
            scan_commands={ScanCommand.CERTIFICATE_INFO, *COMMANDS},
        )
        for port in ports
    ]
    started = time.perf_counter()
    scanner = Scanner()  # defaults: 5 connections per server, 10 servers at once
    scanner.queue_scans(requests)
    results = {}
    for result in scanner.get_results():
        port = result.server_location.port
        entry = {"versions": [], "suites": {}, "connections": 1, "error": None}
        if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
            entry["error"] = str(result.connectivity_error_trace)
            results[str(port)] = entry
            continue
        certificate = result.scan_result.certificate_info
        if certificate.result is not None:
            entry["connections"] += len(certificate.result.certificate_deployments) or 1
        for version, attribute in COMMANDS.values():
            attempt = getattr(result.scan_result, attribute)
            if attempt.result is None:
                continue
            accepted = [suite.cipher_suite.name for suite in attempt.result.accepted_cipher_suites]
            entry["connections"] += len(accepted) + len(attempt.result.rejected_cipher_suites)
            if accepted:
                entry["versions"].append(version)
                entry["suites"][version] = sorted(accepted)
        results[str(port)] = entry
    print(json.dumps({"seconds": time.perf_counter() - started, "results": results}))


if __name__ == "__main__":
    main()
