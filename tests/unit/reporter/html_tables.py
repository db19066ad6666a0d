"""Reading a dashboard page as a browser would show it: the cells of a table, the links, the text of an element."""

from html.parser import HTMLParser


class _Collector(HTMLParser):
    """Collects the cells of the table with id `table_id`, row by row, as text; links as (href, text) pairs; and
    the text inside the element with id `element_id`."""

    def __init__(self, *, table_id: str = "", element_id: str = "") -> None:
        super().__init__(convert_charrefs=True)
        self.table_id, self.element_id = table_id, element_id
        self.rows: list[list[str]] = []
        self.links: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._table_depth = 0
        self._element_depth = 0
        self._cell: list[str] | None = None
        self._link: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._element_depth:
            self._element_depth += 1
        elif self.element_id and attributes.get("id") == self.element_id:
            self._element_depth = 1
        if tag == "table" and (self._table_depth or attributes.get("id") == self.table_id):
            self._table_depth += 1
        if self._table_depth == 1 and tag == "tr":
            self.rows.append([])
        if self._table_depth == 1 and tag in ("td", "th"):
            self._cell = []
        if tag == "a":
            self._link = (attributes.get("href") or "", [])

    def handle_endtag(self, tag: str) -> None:
        if self._element_depth:
            self._element_depth -= 1
        if self._table_depth == 1 and tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        if tag == "table" and self._table_depth:
            self._table_depth -= 1
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], " ".join(" ".join(self._link[1]).split())))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._link is not None:
            self._link[1].append(data)
        if self._element_depth:
            self.text.append(data)


def table(page: str, table_id: str) -> list[list[str]]:
    """The rows of the table `table_id` (header row first), each a list of cell texts, whitespace collapsed."""
    collector = _Collector(table_id=table_id)
    collector.feed(page)
    return collector.rows


def body_rows(page: str, table_id: str) -> list[list[str]]:
    """The rows of the table `table_id` without its header row."""
    return table(page, table_id)[1:]


def links(page: str) -> list[tuple[str, str]]:
    """Every link of the page as (href, text), in order."""
    collector = _Collector()
    collector.feed(page)
    return collector.links


def href(page: str, text: str) -> str:
    """The address of the first link whose text is `text`."""
    return next(address for address, label in links(page) if label == text)


def text_of(page: str, element_id: str) -> str:
    """The text inside the element `element_id`, whitespace collapsed."""
    collector = _Collector(element_id=element_id)
    collector.feed(page)
    return " ".join(" ".join(collector.text).split())
