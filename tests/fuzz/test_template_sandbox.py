"""User-replaceable templates under sandbox-escape attempts (issue 18): the email templates
(`channels.email.templates`) and the SNMP receivers' `message_template`.

Each classic payload is refused when the notifier starts (`Renderer.validate`, a RuntimeConfigError naming the
template) or renders harmlessly; at send time it renders or fails with the notifier's own error (RenderError, a
permanent DeliveryError), nothing else escapes, nothing hangs, and no secret of the environment shows in a message
or an error.
"""

import time
from pathlib import Path

import pytest

from services.notifier.adapters.rendering import Renderer, RenderError, sample_notice
from services.notifier.adapters.snmp import SnmpSender
from services.notifier.domain.deliveries import ChannelKind, Delivery
from services.notifier.ports import DeliveryError
from shared.config import SnmpReceiver
from shared.settings import RuntimeConfigError
from tests.support.alarms import build_alarm
from tests.unit.notifier.test_notifier_snmp import delivery, notice

SECRET = "s3cret-from-the-environment"
#: The payloads, by what they try.
PAYLOADS = {
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals through cycler": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "globals through joiner": "{{ joiner.__init__.__globals__.os.environ }}",
    "globals through namespace": "{{ namespace.__init__.__globals__ }}",
    "template context": "{{ self._TemplateReference__context }}",
    "config": "{{ config }}",
    "config items": "{{ config.items() }}",
    "request": "{{ request.application.__globals__ }}",
    "loop over subclasses": "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "format string attributes": "{{ '{0.__class__.__mro__}'.format(alarm_id) }}",
    "format string globals": "{{ '{0.__init__.__globals__}'.format(cycler) }}",
    "format_map": "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "attr filter": "{{ ''|attr('__class__')|attr('__mro__') }}",
    "attr filter dunder built": "{{ ''|attr('_' ~ '_class_' ~ '_') }}",
    "mutating a list": "{% set x = [] %}{{ x.append(1) }}",
    "mutating a dict": "{{ {}.update(a=1) }}",
    "huge range": "{{ range(10**9)|list|length }}",
    "nested ranges": "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
    "huge string": "{{ 'a' * 10**9 }}",
    "huge list": "{{ ([1] * 10**9)|length }}",
    "huge power": "{{ 9 ** 999999999 }}",
    "output flood": "{% for i in range(100000) %}{{ 'a' * 100000 }}{% endfor %}",
    "division by zero": "{{ 1 / 0 }}",
    "type error": "{{ alarm_id + 1 }}",
    "environment lookup": "{{ lipsum.__globals__['os'].environ['CERTMON_FUZZ_SECRET'] }}",
    "import": "{% import 'os' as os %}{{ os.environ }}",
    "include a file": "{% include '/etc/passwd' %}",
    "extends a file": "{% extends '../../../../etc/passwd' %}",
}
#: Well beyond what the sandbox needs for any payload; a payload that passes it is treated as a hang.
SECONDS = 5.0


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTMON_FUZZ_SECRET", SECRET)


def _renderer(tmp_path: Path, payload: str) -> Renderer:
    """A renderer whose text template is `payload` (its HTML template stays the packaged one)."""
    (tmp_path / "alarm.txt.j2").write_text(payload)
    return Renderer(public_url="https://certmon.example.com", templates_dir=tmp_path)


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_an_email_template_is_refused_at_start_or_renders_harmlessly(tmp_path: Path, payload: str) -> None:
    started = time.monotonic()
    renderer = _renderer(tmp_path, payload)
    try:
        renderer.validate()
    except RuntimeConfigError as refused:
        assert "alarm.txt.j2" in str(refused) and SECRET not in str(refused)
    for transition in ("raised", "reminded", "resolved"):
        one = Delivery(ChannelKind.EMAIL, ("owner@example.com",), "owner", "default", "k")
        try:
            message = renderer.render(sample_notice(transition), one)
        except RenderError as failed:
            assert SECRET not in str(failed)
        else:
            assert SECRET not in message.text + message.html + message.subject
            assert "<class" not in message.text and "__globals__" not in message.text
    assert time.monotonic() - started < SECONDS


def _sender(payload: str) -> SnmpSender:
    receiver = SnmpReceiver(host="127.0.0.1", port=1, community_env="C", message_template=payload)
    return SnmpSender({"nms": receiver}, environ={"C": "public"})


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
async def test_an_snmp_message_template_goes_out_harmlessly_or_fails_permanently(payload: str) -> None:
    """A trap to 127.0.0.1:1 (nothing listens; a trap is not answered) goes out with a harmless message, or
    the delivery fails for good with the template's error."""
    started = time.monotonic()
    try:
        await _sender(payload).send(delivery("nms"), notice(build_alarm()))
    except DeliveryError as failed:
        assert failed.transient is False and "message_template" in str(failed)
        assert SECRET not in str(failed)
    assert time.monotonic() - started < SECONDS


@pytest.mark.parametrize(
    "payload",
    [PAYLOADS["huge string"], PAYLOADS["huge list"], PAYLOADS["huge power"], PAYLOADS["output flood"]],
    ids=["string", "list", "power", "flood"],
)
def test_exhaustion_is_refused_before_it_is_built(tmp_path: Path, payload: str) -> None:
    """The sandbox refuses the arithmetic, and the output limit stops a flood, with a reason (the regression of
    what the sandbox alone let through: gigabytes of string, a power that computes for minutes)."""
    with pytest.raises(RuntimeConfigError, match=r"refused|exceeds"):
        _renderer(tmp_path, payload).validate()


def test_a_template_that_raises_is_a_render_error(tmp_path: Path) -> None:
    """What a template raises that is no Jinja error (ZeroDivisionError, the sandbox's OverflowError for a huge
    range) is the renderer's RenderError, and a RuntimeConfigError at start naming the template's line."""
    for payload, reason in ((PAYLOADS["division by zero"], "ZeroDivisionError"), (PAYLOADS["huge range"], "Range")):
        renderer = _renderer(tmp_path, payload)
        with pytest.raises(RuntimeConfigError, match=r"alarm\.txt\.j2:1"):
            renderer.validate()
        one = Delivery(ChannelKind.EMAIL, ("owner@example.com",), "owner", "default", "k")
        with pytest.raises(RenderError, match=reason):
            renderer.render(sample_notice("raised"), one)
