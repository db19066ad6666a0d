"""The certificates list: filters, orders, keyset pages, bad values answered with 400, hostile text escaped."""

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.service_layer.dashboard import PAGE_SIZE
from shared.events import Evaluation, TargetRef
from tests.unit.reporter.html_tables import body_rows, href, links, table, text_of
from tests.unit.reporter.reporter_app import READ, client_on
from tests.unit.reporter.reporter_factories import NOW, evaluation
from tests.unit.reporter.test_reporter_pages import assert_self_contained


def on_server(item: Evaluation, server: str, *, issuer: str | None = None) -> Evaluation:
    """`item` served by `server`, its certificate issued by `issuer` when given."""
    update: dict[str, object] = {"target": item.target.model_copy(update={"server": server})}
    if issuer is not None and item.certificate is not None:
        update["certificate"] = item.certificate.model_copy(update={"issuer": issuer})
    return item.model_copy(update=update)


ESTATE = [
    on_server(evaluation("fine.example", days=200, level="ok", grade="A+", owner="platform"), "web-01"),
    on_server(evaluation("soon.example", days=5, level="critical", grade="B", owner="shop"), "web-02"),
    on_server(evaluation("month.example", days=20, level="warning", owner="shop"), "web-01", issuer="CN=Other CA"),
    evaluation("gone.example", days=-2, level="critical", grade="F"),
    evaluation("down.example", days=None, level="warning"),
]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client on ESTATE."""
    history = InMemoryHistory()
    for n, item in enumerate(ESTATE):
        await history.record_evaluation(f"e{n}", item)
    async with client_on(history) as client:
        yield client


async def targets(client: httpx.AsyncClient, query: str) -> list[str]:
    """The targets the list shows for `query`, in order."""
    response = await client.get(f"/certificates?{query}", headers=READ)
    assert response.status_code == 200, response.text
    return [row[0].split()[0] for row in body_rows(response.text, "certificates")]


async def test_the_list_is_most_urgent_first_by_default(client: httpx.AsyncClient) -> None:
    """Critical first, then by expiry; a target without a certificate after the certificates of its level."""
    response = await client.get("/certificates", headers=READ)
    assert_self_contained(response)
    assert table(response.text, "certificates")[0][:5] == ["Target", "Level", "Grade", "Not after", "Days left"]
    assert await targets(client, "") == [
        "gone.example:443",
        "soon.example:443",
        "month.example:443",
        "down.example:443",
        "fine.example:443",
    ]
    assert text_of(response.text, "match-count") == "5 targets match."


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level=critical", ["gone.example:443", "soon.example:443"]),
        ("grade=A%2B", ["fine.example:443"]),
        ("owner=shop", ["soon.example:443", "month.example:443"]),
        ("server=web-01", ["month.example:443", "fine.example:443"]),
        ("issuer=CN%3DOther+CA", ["month.example:443"]),
        ("days_min=0&days_max=30", ["soon.example:443", "month.example:443"]),
        ("days_max=0", ["gone.example:443"]),
        ("expires=2026-12-02", ["soon.example:443"]),
        ("expires=2026-12", ["soon.example:443", "month.example:443"]),
        ("q=MONTH", ["month.example:443"]),
        ("owner=shop&level=warning", ["month.example:443"]),
        ("owner=nobody", []),
    ],
)
async def test_each_filter_narrows_the_list(client: httpx.AsyncClient, query: str, expected: list[str]) -> None:
    """Level, grade, owner, server, issuer, days left, expiry day or month and text each narrow; they combine."""
    assert await targets(client, query) == expected


async def test_a_submitted_form_with_empty_fields_filters_nothing(client: httpx.AsyncClient) -> None:
    """A filter form sends every field; empty ones mean any."""
    query = "level=&grade=&owner=&server=&issuer=&days_min=&days_max=&expires=&q=&sort="
    assert len(await targets(client, query)) == len(ESTATE)


async def test_the_sort_links_reorder_and_keep_the_filters(client: httpx.AsyncClient) -> None:
    """Each sortable header links to the same filters in its order; the expiry order puts no-certificate last."""
    page = (await client.get("/certificates?owner=shop", headers=READ)).text
    by_target = href(page, "Target")
    assert parse_qs(urlsplit(by_target).query) == {"owner": ["shop"], "sort": ["target"]}
    assert await targets(client, urlsplit(by_target).query) == ["month.example:443", "soon.example:443"]
    assert await targets(client, "sort=expiry") == [
        "gone.example:443",
        "soon.example:443",
        "month.example:443",
        "fine.example:443",
        "down.example:443",
    ]


async def test_walking_the_next_links_lists_every_target_once() -> None:
    """Over several pages, the next link continues after the last row and the last page has none."""
    history = InMemoryHistory()
    count = PAGE_SIZE * 2 + 7
    for n in range(count):
        item = evaluation(f"host{n:03d}.example", days=n % 40, level="warning" if n % 3 else "critical")
        await history.record_evaluation(f"e{n}", item)
    seen: list[str] = []
    async with client_on(history) as client:
        address: str | None = "/certificates?level=warning&sort=expiry"
        pages = 0
        while address is not None:
            page = (await client.get(address, headers=READ)).text
            seen += [row[0] for row in body_rows(page, "certificates")]
            address = _next(page)
            pages += 1
    assert pages == 2
    assert len(seen) == len(set(seen)) == sum(1 for n in range(count) if n % 3)


def _next(page: str) -> str | None:
    """The address of the page's next-page link, if it has one."""
    return next((address for address, label in links(page) if label == "Next page"), None)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("level=urgent", "level: Input should be 'critical', 'warning', 'info' or 'ok'"),
        ("grade=Z", "grade: Input should be"),
        ("days_min=10&days_max=2", "days_min is more than days_max"),
        ("days_min=soon", "days_min: Input should be a valid number"),
        ("days_max=nan", "days_max: Input should be a finite number"),
        ("days_max=1e9", "days_max: Input should be less than or equal to 36500"),
        ("expires=2026-13", "expires: a day (YYYY-MM-DD) or a month (YYYY-MM)"),
        ("sort=random", "sort: Input should be 'urgency', 'expiry' or 'target'"),
        ("cursor=not-a-cursor", "cursor: not a page of this list"),
        ("q=" + "x" * 300, "q: String should have at most 256 characters"),
    ],
)
async def test_a_bad_filter_value_is_a_400_page_with_the_reason(
    client: httpx.AsyncClient, query: str, reason: str
) -> None:
    """A value the list cannot use answers 400, an HTML page naming the field and why, never a 500."""
    response = await client.get(f"/certificates?{query}", headers=READ)
    assert response.status_code == 400
    assert_self_contained(response)
    assert reason.replace("'", "&#39;") in response.text


async def test_a_cursor_of_another_order_is_refused(client: httpx.AsyncClient) -> None:
    """A page position taken in one order is not used in another."""
    page = (await client.get("/certificates?sort=expiry", headers=READ)).text
    assert _next(page) is None
    history = InMemoryHistory()
    for n in range(PAGE_SIZE + 1):
        await history.record_evaluation(f"e{n}", evaluation(f"h{n}.example", days=n))
    async with client_on(history) as many:
        cursor = parse_qs(urlsplit(_next((await many.get("/certificates", headers=READ)).text) or "").query)["cursor"]
        response = await many.get(f"/certificates?sort=target&cursor={cursor[0]}", headers=READ)
    assert response.status_code == 400
    assert "cursor: not a page of this list in this order" in response.text


async def test_hostile_certificate_text_is_shown_as_text() -> None:
    """A subject, issuer and names full of markup appear escaped in the list and in the filter form."""
    hostile = evaluation("evil.example", days=3, level="critical", subject='CN="><script>alert(1)</script>')
    assert hostile.certificate is not None
    hostile = hostile.model_copy(
        update={
            "certificate": hostile.certificate.model_copy(update={"issuer": "CN=<img src=x onerror=alert(2)>"}),
            "target": TargetRef(host="evil.example", port=443, server="<b>srv</b>"),
        }
    )
    history = InMemoryHistory()
    await history.record_evaluation("e1", hostile)
    async with client_on(history) as client:
        page = (await client.get('/certificates?q="><script>', headers=READ)).text
    assert "<script>" not in page and "<img" not in page and "<b>srv" not in page
    assert "CN=&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "CN=&lt;img src=x onerror=alert(2)&gt;" in page
    assert 'value="&#34;&gt;&lt;script&gt;"' in page
    assert body_rows(page, "certificates")[0][5] == 'CN="><script>alert(1)</script>'


async def test_days_left_are_counted_from_now() -> None:
    """The list shows days left at the page's moment, not at the evaluation's."""
    earlier = evaluation("a.example", days=10, evaluated_at=NOW - timedelta(days=3))
    assert earlier.expiry is not None
    earlier = earlier.model_copy(update={"expiry": earlier.expiry.model_copy(update={"days_remaining": 13.0})})
    history = InMemoryHistory()
    await history.record_evaluation("e1", earlier)
    async with client_on(history) as client:
        page = (await client.get("/certificates", headers=READ)).text
    assert body_rows(page, "certificates")[0][4] == "10.0"
