"""`certmon snmp mib`: the MIB a trap receiver loads, for the default or another enterprise arc."""

import pytest

from services.cli import main
from services.notifier.adapters.snmp import mib_text


def test_snmp_mib_prints_the_shipped_mib(capsys: pytest.CaptureFixture[str]) -> None:
    """Without an arc it prints the module at RFC 5612's documentation number."""
    assert main(["snmp", "mib"]) == 0
    assert capsys.readouterr().out == mib_text()


def test_snmp_mib_prints_the_mib_for_another_arc(capsys: pytest.CaptureFixture[str]) -> None:
    """With --enterprise-oid the module identity moves there."""
    assert main(["snmp", "mib", "--enterprise-oid", "1.3.6.1.4.1.4242"]) == 0
    assert "::= { enterprises 4242 }" in capsys.readouterr().out


def test_snmp_mib_refuses_an_arc_outside_enterprises(capsys: pytest.CaptureFixture[str]) -> None:
    """An OID not under 1.3.6.1.4.1 exits 1 with the reason, printing no MIB."""
    assert main(["snmp", "mib", "--enterprise-oid", "1.3.6.1.2.1"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, "not an OID under enterprises" in captured.err) == ("", True)
