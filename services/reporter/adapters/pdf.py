"""The PDF rendering of a report: its HTML page laid out by WeasyPrint.

The page is self-contained (inline CSS, inline SVG charts), so nothing is fetched: WeasyPrint is given a fetcher
that allows no protocol at all, so a URL that found its way into a page (a certificate field is escaped, but a
template could change) fails to load instead of reaching the network or the file system.
"""

from weasyprint import HTML
from weasyprint.urls import URLFetcher


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML page."""
    pdf: bytes = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()
    return pdf
