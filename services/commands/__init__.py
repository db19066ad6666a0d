"""The `certmon` subcommands, one module each, imported only when used (so `certmon check` starts fast)."""
