"""Content-Security-Policy on every page, and no inline script anywhere.

The policy (config/settings/base.py) allows scripts from our own origin only, so an
inline `<script>`, an `onclick=` or a `javascript:` link would stop working. Two
checks keep it so: every template in the project is scanned (a new template with an
inline script fails here, whoever adds it), and every page of the demo reachable by
a link is fetched and its HTML parsed. Data for scripts travels in `json_script`
blocks (`type="application/json"`), which are not run.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
DATA_TYPES = {"application/json", "application/ld+json"}
SKIP_PREFIXES = ("/static/", "/accounts/logout", "/admin/", "/api/", "/demo/")
MAX_PAGES = 400
PER_KIND = 2


class ScriptFinder(HTMLParser):
    """Collects every way a page could run inline JavaScript, with its line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            kind = (values.get("type") or "").strip().lower()
            if kind not in DATA_TYPES:
                self.problems.append(f"line {line}: inline <script> without src")
        for name, value in attrs:
            if name.startswith("on") or name.startswith("hx-on"):
                self.problems.append(f"line {line}: inline handler {name}= on <{tag}>")
            if name in {"href", "src", "action", "formaction"} and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.problems.append(f"line {line}: javascript: URL in {name}= on <{tag}>")
        for name in ("href", "hx-get"):
            if values.get(name):
                self.links.append(values[name])


def inline_script_problems(html: str) -> list[str]:
    finder = ScriptFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def project_templates() -> list[Path]:
    return sorted(
        path
        for path in ROOT.glob("**/templates/**/*.html")
        if not {".venv", "var", "node_modules", ".git"} & set(path.relative_to(ROOT).parts)
    )


def test_the_scanner_finds_each_kind_of_inline_script():
    html = """<script>alert(1)</script><script type="module">x()</script>
    <button onclick="go()">Go</button><a href="javascript:go()">Go</a>
    <div hx-on:click="go()"></div><script src="/static/js/ok.js"></script>
    <script id="f" type="application/json">{"a": 1}</script>"""
    assert len(inline_script_problems(html)) == 5


def test_no_template_has_an_inline_script_or_handler():
    templates = project_templates()
    assert len(templates) > 30  # the scan found the project's templates
    problems = {
        str(path.relative_to(ROOT)): found
        for path in templates
        if (found := inline_script_problems(path.read_text()))
    }
    assert problems == {}, (
        "Inline JavaScript is blocked by the Content-Security-Policy: move it to a file "
        "in static/js/ and pass data with json_script."
    )


def assert_csp(answer, url: str) -> None:
    policy = answer.get("Content-Security-Policy", "")
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip()
    )
    assert directives.get("script-src") == "'self'", (url, policy)
    assert directives.get("object-src") == "'none'", (url, policy)
    assert directives.get("frame-ancestors") == "'none'", (url, policy)


@pytest.fixture
def demo(db):
    call_command("load_demo", verbosity=0, stdout=StringIO())
    call_command("load_demo_metrics", verbosity=0, stdout=StringIO())


def shape(url: str) -> str:
    """/nodes/12/edit/?view=x -> /nodes/N/edit/?view: pages of one kind. A glossary
    term's slug counts as an id (/glossary/customer/edit/ -> /glossary/S/edit/): each
    of the default glossary's hundreds of terms was a kind of its own, and crawling
    them all used up MAX_PAGES before the crawl reached the metrics."""
    parts = urlsplit(url)
    keys = sorted(key.split("=")[0] for key in parts.query.split("&") if key)
    path = re.sub(r"^/glossary/(?!new/|export/|import/)[^/]+/", "/glossary/S/", parts.path)
    return re.sub(r"\d+", "N", path) + "?" + "&".join(keys)


def crawl(client: Client, start: list[str]) -> dict[str, list[str]]:
    """GET the same-site pages reachable from `start` by links and hx-get, up to
    PER_KIND of each kind; the inline script problems of each HTML page (every page
    must answer 200)."""
    seen: set[str] = set()
    kinds: Counter[str] = Counter()
    queue = deque(start)
    found: dict[str, list[str]] = {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen or kinds[shape(url)] >= PER_KIND:
            continue
        seen.add(url)
        kinds[shape(url)] += 1
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        if not answer["Content-Type"].startswith("text/html"):
            continue
        assert_csp(answer, url)
        finder = ScriptFinder()
        finder.feed(answer.content.decode())
        found[url] = finder.problems
        for href in finder.links:
            parts = urlsplit(urljoin("http://testserver" + url, urldefrag(href).url))
            if parts.netloc != "testserver":
                continue
            link = parts.path + (f"?{parts.query}" if parts.query else "")
            if link.startswith(SKIP_PREFIXES) or "format=" in parts.query:
                continue
            queue.append(link)
    return found


def test_every_demo_page_sends_the_policy_and_runs_no_inline_script(demo):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    pages = crawl(client, ["/", "/dashboard/", "/data-products/board/"])
    assert len(pages) >= 25, sorted(pages)  # the crawl reached the tree, nodes, metrics…
    assert any(url.startswith("/metrics/") for url in pages)
    assert any(url.startswith("/nodes/") for url in pages)
    assert {url: problems for url, problems in pages.items() if problems} == {}


def test_pages_outside_the_app_send_the_policy_too(client, admin_user):
    for url in ("/accounts/login/", "/api/docs/"):
        answer = client.get(url)
        assert answer.status_code == 200
        assert_csp(answer, url)
        assert inline_script_problems(answer.content.decode()) == [], url
    client.force_login(admin_user)
    answer = client.get("/admin/")
    assert_csp(answer, "/admin/")
