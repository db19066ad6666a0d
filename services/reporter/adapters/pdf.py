"""The PDF rendering of a report: its HTML page laid out by WeasyPrint.

The page is self-contained (inline CSS, inline SVG charts), so nothing is fetched: WeasyPrint is given a fetcher
that allows no protocol at all, so a URL that found its way into a page (a certificate field is escaped, but a
template could change) fails to load instead of reaching the network or the file system.

WeasyPrint loads the system's pango when it is imported, so it is imported when a PDF is first asked for: where
pango is missing the reporter still runs and publishes the other formats, and a PDF fails with `PdfUnavailable`.
"""


class PdfUnavailable(RuntimeError):
    """WeasyPrint cannot load the system libraries it lays pages out with (pango)."""


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML page; raises PdfUnavailable without pango."""
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except OSError as exc:  # cffi could not open libpango / libpangoft2
        raise PdfUnavailable(f"PDF reports need pango (Debian: libpango-1.0-0, libpangoft2-1.0-0): {exc}") from exc
    pdf: bytes = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()
    return pdf
