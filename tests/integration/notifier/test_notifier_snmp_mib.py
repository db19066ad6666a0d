"""CERTMON-MIB as receivers see it: clean under libsmi's strictest lint with the IETF base modules, loadable by
net-snmp at another enterprise arc, and the same file in the package and in deploy/snmp."""

import subprocess
from pathlib import Path

import pytest

from services.notifier.adapters.snmp import MIB_MODULE, mib_directory, mib_text
from tests.support.snmptrapd import copy_base_mibs, require_tool

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[3]
OTHER_ARC = "1.3.6.1.4.1.99999.42"


def write_mib(folder: Path, enterprise_oid: str) -> Path:
    """CERTMON-MIB for `enterprise_oid`, written as `folder/CERTMON-MIB.txt` (the name tools look for)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MIB_MODULE}.txt").write_text(mib_text(enterprise_oid), encoding="utf-8")
    return folder


def test_the_deploy_copy_is_the_packaged_mib() -> None:
    """deploy/snmp/CERTMON-MIB.txt, which operators load, is byte for byte the module the sender follows."""
    packaged = (mib_directory() / f"{MIB_MODULE}.txt").read_bytes()
    assert (REPOSITORY / "deploy" / "snmp" / f"{MIB_MODULE}.txt").read_bytes() == packaged
    assert packaged.decode("utf-8") == mib_text()


@pytest.mark.parametrize("arc", ["1.3.6.1.4.1.32473", OTHER_ARC, "1.3.6.1.4.1.99999.42.7"])
def test_smilint_at_its_strictest_level_reports_nothing(tmp_path: Path, arc: str) -> None:
    """`smilint -l 6` (every error and warning) over the module, its imports resolved from the IETF texts."""
    smilint = require_tool("smilint", "smitools")
    base = copy_base_mibs(tmp_path / "base")
    mibs = write_mib(tmp_path / "mib", arc)
    result = subprocess.run(
        [smilint, "-l", "6", "-s", "-m", str(mibs / f"{MIB_MODULE}.txt")],
        capture_output=True,
        text=True,
        env={"SMIPATH": f"{mibs}:{base}"},
        timeout=60,
        check=False,
    )
    # smilint exits 0 even when it reports problems: the verdict is its silence.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_net_snmp_places_the_notifications_under_the_configured_arc(tmp_path: Path) -> None:
    """snmptranslate resolves the clear notification and the message object at the arc the MIB was printed for."""
    snmptranslate = require_tool("snmptranslate", "snmp")
    base = copy_base_mibs(tmp_path / "base")
    mibs = write_mib(tmp_path / "mib", OTHER_ARC)
    result = subprocess.run(
        [
            snmptranslate,
            "-M",
            f"{mibs}:{base}",
            "-m",
            MIB_MODULE,
            "-On",
            f"{MIB_MODULE}::certmonAlarmResolved",
            f"{MIB_MODULE}::certmonAlarmMessage",
        ],
        capture_output=True,
        text=True,
        env={"SNMP_PERSISTENT_DIR": str(tmp_path / "persist")},
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == [f".{OTHER_ARC}.0.5", f".{OTHER_ARC}.1.15"]
