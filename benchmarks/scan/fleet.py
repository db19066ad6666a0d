"""A fleet of TLS endpoints on 127.0.0.1 with varied configurations, run as its own process.

`python -m benchmarks.scan.fleet N` prints one JSON line `{"endpoints": [{"port", "config"}...]}` once every
server listens, then serves until its stdin closes.
"""

import asyncio
import base64
import json
import ssl
import sys
import tempfile
import warnings
from pathlib import Path

from services.demo.endpoints import tls_server
from services.demo.pki import ec_key, make_ca, make_leaf, rsa_key, write_chain
from services.scanner.probes.enumeration.groups import ffdhe_primes

#: name → (min version, max version, OpenSSL cipher string or None for the default, server preference, key type)
CONFIGS: dict[str, tuple[ssl.TLSVersion, ssl.TLSVersion, str | None, bool, str]] = {
    "modern": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, None, True, "rsa"),
    "tls12-two-suites": (
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_2,
        "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA",
        True,
        "rsa",
    ),
    "tls13-only": (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3, None, True, "rsa"),
    "legacy-1.0-1.2": (
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_2,
        "ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA256:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        True,
        "rsa",
    ),
    "client-preference": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, None, False, "rsa"),
    "ecdsa": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, None, True, "ec"),
    "dhe": (
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_2,
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:ECDHE-RSA-AES256-GCM-SHA384",
        True,
        "rsa",
    ),
    "tls11-only": (
        ssl.TLSVersion.TLSv1_1,
        ssl.TLSVersion.TLSv1_1,
        "AES128-SHA:CAMELLIA256-SHA:@SECLEVEL=0",
        True,
        "rsa",
    ),
}


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 128:
        return bytes([tag, len(body)]) + body
    length = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _ffdhe2048_pem() -> bytes:
    prime = next(p for p, name in ffdhe_primes().items() if name == "ffdhe2048")
    ints = b"".join(_der(0x02, b"\x00" + n.to_bytes((n.bit_length() + 7) // 8, "big")) for n in (prime, 2))
    body = base64.encodebytes(_der(0x30, ints)).decode("ascii")
    return f"-----BEGIN DH PARAMETERS-----\n{body}-----END DH PARAMETERS-----\n".encode()


def contexts(directory: Path) -> dict[str, ssl.SSLContext]:
    """One server context per configuration, with RSA or ECDSA certificates under one root."""
    root = make_ca()
    files = {
        "rsa": write_chain(directory, "rsa", make_leaf(root, ["localhost"], key=rsa_key()), root),
        "ec": write_chain(directory, "ec", make_leaf(root, ["localhost"], key=ec_key()), root),
    }
    dh_params = directory / "dh.pem"
    dh_params.write_bytes(_ffdhe2048_pem())
    result = {}
    for name, (low, high, ciphers, preference, key) in CONFIGS.items():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version, ctx.maximum_version = low, high
        if ciphers:
            ctx.set_ciphers(ciphers)
        if not preference:
            ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        if name == "dhe":
            ctx.load_dh_params(str(dh_params))
        ctx.load_cert_chain(*files[key])
        result[name] = ctx
    return result


async def serve(count: int) -> None:
    """Start `count` endpoints cycling through the configurations; run until stdin closes."""
    with tempfile.TemporaryDirectory() as tmp:
        ctxs = contexts(Path(tmp))
        names = list(ctxs)
        endpoints = []
        servers = []
        for index in range(count):
            name = names[index % len(names)]
            manager = tls_server(ctxs[name])
            port = await manager.__aenter__()
            servers.append(manager)
            endpoints.append({"port": port, "config": name})
        print(json.dumps({"endpoints": endpoints}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for manager in servers:
            await manager.__aexit__(None, None, None)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
