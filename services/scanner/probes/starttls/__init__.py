"""STARTTLS: the plaintext dialogue that asks a server to switch to TLS, one module per protocol.

- `smtp`: greeting 220, `EHLO`, `STARTTLS` → 220 (RFC 3207)
- `imap`: `* OK` greeting, `a1 STARTTLS` → `a1 OK` (RFC 3501)
- `pop3`: `+OK` greeting, `STLS` → `+OK` (RFC 2595)
- `ftp`: greeting 220, `AUTH TLS` → 234 (RFC 4217)
- `ldap`: the StartTLS extended operation, BER-encoded (RFC 4511 §4.14)
- `xmpp`: stream header, `<starttls/>` → `<proceed/>` (RFC 6120 §5)
- `postgres`: the 8-byte SSLRequest → `S` (the PostgreSQL frontend/backend protocol)

`negotiate` maps each protocol to its module's `starttls`; `dialogue` is the byte-budgeted exchange they share.
"""
