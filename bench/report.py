"""Benchmark: a scheduled review report rendered and delivered (issue 13).

Run from the repository root::

    .venv/bin/python bench/report.py [--runs 3] [--recipients 100]

It builds, in a throw-away database, a 1,010-node tree (10 goals × 10 bets × 9
initiatives) with 2,000 measures, publishes a first review before any verdict and a
second after every measure got one (so "what changed" lists 2,000 moves), then:

- ``html``: the report's e-mail parts from its content (templates + css-inline);
- ``pdf``: the PDF from the same template (WeasyPrint), in the same run;
- ``charts``: the chart PNGs (matplotlib), shared by both;
- ``delivery``: the worker's whole job for one review to N recipients: the run's
  policy check, the stored render (content, charts, e-mail parts, PDF), N delivery
  rows, and N messages sent over SMTP to a local aiosmtpd server.

``html``/``pdf`` ``median_ms`` are end to end from the published review (data, content,
charts, templates, and WeasyPrint for the PDF), the way a delivery renders; the
``*_only`` figures leave out the shared steps. ``ratio_pdf_to_html`` is of the end-to-end
medians of wall time; ``cpu_ms`` and ``ratio_pdf_to_html_cpu`` are the same runs in the
process's CPU time, which other jobs on a shared machine do not inflate. Times are medians in ms; ``peak_python_bytes`` is tracemalloc's peak (Python
allocations; WeasyPrint's Pango/HarfBuzz memory is not in it), ``max_rss_bytes`` the
process's peak resident size at the end. One JSON object on stdout. Targets: PDF ≤ 5 MB,
delivery to 100 recipients ≤ 60 s of worker time, PDF/HTML time ratio ≤ 10.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import resource
import socket
import sys
import time
import tracemalloc
from typing import Any

import django  # noqa: E402
from _common import check, database_vendor, log, median_ms, throwaway_database  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from outcomes.models import Measure, Verdict  # noqa: E402
from outcomes.reports import services as report_services  # noqa: E402
from outcomes.reports.charts import report_charts  # noqa: E402
from outcomes.reports.content import report_content  # noqa: E402
from outcomes.reports.models import Delivery, ReviewRender, ScheduledRun  # noqa: E402
from outcomes.reports.render import email_parts, pdf_bytes  # noqa: E402
from outcomes.reviews import services as review_services  # noqa: E402
from outcomes.reviews.selectors import review_data  # noqa: E402
from tests.factories import bulk_tree, make_role_users, make_tree  # noqa: E402
from valuetree.models import Node, NodeKind  # noqa: E402

SHAPE = (10, 10, 9)
MEASURES = 2000
MAX_PDF_BYTES = 5 * 1024 * 1024
MAX_DELIVERY_SECONDS = 60.0
MAX_PDF_HTML_RATIO = 10.0
STATUSES = ("on_track", "at_risk", "off_track", "achieved", "missed", "stale")


def build(users: dict[str, Any]) -> Any:
    tree = make_tree(users, slug="report-bench", name="Report bench")
    goals, bets, initiatives = SHAPE
    bulk_tree(tree, goals=goals, bets=bets, initiatives=initiatives, measures=2)
    extra = MEASURES - Measure.objects.filter(node__tree=tree).count()
    Measure.objects.bulk_create(
        Measure(
            node=node,
            name="Measure extra",
            direction="increase",
            baseline_value=0,
            baseline_date=dt.date(2026, 1, 1),
            target_value=100,
            target_date=dt.date(2027, 1, 1),
            position=2,
        )
        for node in Node.objects.filter(tree=tree, kind=NodeKind.INITIATIVE)[:extra]
    )
    first = review_services.review_start(tree=tree, by=users["owner"])
    review_services.review_publish(review=first, by=users["owner"])
    now = timezone.now()
    Verdict.objects.bulk_create(
        (
            Verdict(
                measure_id=measure_id,
                evaluated_at=now,
                as_of=now,
                status=STATUSES[i % len(STATUSES)],
                judged_status=STATUSES[i % len(STATUSES)],
                progress=(i % 100) / 100,
                expected_progress=0.5,
            )
            for i, measure_id in enumerate(
                Measure.objects.filter(node__tree=tree).values_list("id", flat=True)
            )
        ),
        batch_size=2000,
    )
    second = review_services.review_start(tree=tree, by=users["owner"], title="Bench review")
    return tree, review_services.review_publish(review=second, by=users["owner"])


CPU_MS: dict[str, list[float]] = {}


def timed(fn: Any, label: str | None = None) -> tuple[float, Any]:
    """(wall ms, result); no tracing (tracemalloc slows WeasyPrint several times over).
    With ``label``, the process's CPU time is kept in ``CPU_MS[label]`` as well: on a
    machine shared with other jobs the wall time mostly measures the others."""
    gc.collect()  # one render does not pay for the garbage of the one before
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if label:
        CPU_MS.setdefault(label, []).append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - started) * 1000, result


def peak_bytes(fn: Any) -> int:
    """tracemalloc's peak while ``fn`` runs (a separate, untimed pass)."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deliver(tree: Any, review: Any, users: dict[str, Any], recipients: int) -> dict[str, Any]:
    from aiosmtpd.controller import Controller

    class Count:
        received = 0
        bytes = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            Count.received += 1
            Count.bytes += len(envelope.content)
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        schedule = report_services.schedule_save(
            tree=tree,
            by=users["owner"],
            rrule="FREQ=WEEKLY;BYDAY=MO",
            starts_on=dt.date(2026, 1, 5),
            time_of_day=dt.time(9),
            timezone="Europe/Oslo",
            recipient_roles=[],
            extra_addresses=[f"reader{i}@example.com" for i in range(recipients)],
            channels=["email"],
        )
        ReviewRender.objects.filter(review=review).delete()
        Delivery.objects.filter(review=review).delete()
        run = ScheduledRun.objects.create(schedule=schedule, run_at=timezone.now(), review=review)
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_USE_TLS=False,
        ):
            started, cpu_started = time.perf_counter(), time.process_time()
            ids = report_services.run_deliver(run=run)
            rendered = time.perf_counter()
            for delivery_id in ids:
                report_services.delivery_send(delivery_id=delivery_id, final_attempt=True)
            finished, cpu_finished = time.perf_counter(), time.process_time()
    finally:
        controller.stop()
    sent = Delivery.objects.filter(review=review, status="sent").count()
    check(sent == recipients == Count.received, f"{sent} sent, {Count.received} received")
    return {
        "recipients": recipients,
        "worker_seconds": round(finished - started, 3),
        # The process's CPU time, the local SMTP server's thread included.
        "cpu_seconds_with_smtp_server": round(cpu_finished - cpu_started, 3),
        "render_once_seconds": round(rendered - started, 3),
        "send_seconds": round(finished - rendered, 3),
        "per_message_ms": round((finished - rendered) * 1000 / recipients, 1),
        "message_bytes": Count.bytes // max(Count.received, 1),
    }


def run(runs: int, recipients: int) -> dict[str, Any]:
    users = make_role_users()
    started = time.perf_counter()
    tree, review = build(users)
    log(f"built and published in {time.perf_counter() - started:.1f}s")
    load = lambda: report_content(review_data(review))  # noqa: E731
    load_ms, content = timed(load)
    check(content["node_count"] >= 1000, "a 1,000-node review")
    check(content["measure_count"] == MEASURES, "2,000 measures")
    chart_ms, images = timed(lambda: report_charts(content))

    # End to end, as a delivery renders one or the other: from the published review
    # row to the bytes (data, content, charts, then templates [+ WeasyPrint]).
    def html_whole() -> bytes:
        whole = report_content(review_data(review))
        report_charts(whole)
        return email_parts(whole)[2].encode()

    def pdf_whole() -> bytes:
        whole = report_content(review_data(review))
        return pdf_bytes(whole, report_charts(whole), landscape=False)

    samples: dict[str, list[float]] = {"html": [], "pdf": [], "html_whole": [], "pdf_whole": []}
    html = pdf = b""
    for _ in range(runs + 1):  # the first of each is a warm-up
        ms, parts = timed(lambda: email_parts(content))
        samples["html"].append(ms)
        html = parts[2].encode()
        ms, pdf = timed(lambda: pdf_bytes(content, images, landscape=False))
        samples["pdf"].append(ms)
        samples["html_whole"].append(timed(html_whole, "html_whole")[0])
        samples["pdf_whole"].append(timed(pdf_whole, "pdf_whole")[0])
    med = {name: median_ms(values[1:]) for name, values in samples.items()}
    cpu = {name: median_ms(values[1:]) for name, values in CPU_MS.items()}
    html_peak = peak_bytes(html_whole)
    pdf_peak = peak_bytes(pdf_whole)
    log(f"medians {med}; delivering…")
    delivery = deliver(tree, review, users, recipients)
    from pypdf import PdfReader

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    ratio = round(med["pdf_whole"] / med["html_whole"], 2)
    return {
        "benchmark": "report",
        "database": database_vendor(),
        "django": django.get_version(),
        "nodes": content["node_count"],
        "measures": content["measure_count"],
        "changes": content["changes_count"],
        "load_ms": round(load_ms, 1),
        "charts": {"median_ms": round(chart_ms, 1), "bytes": sum(map(len, images.values()))},
        "html": {
            "median_ms": med["html_whole"],
            "template_only_ms": med["html"],
            "bytes": len(html),
            "peak_python_bytes": html_peak,
        },
        "pdf": {
            "median_ms": med["pdf_whole"],
            "template_and_layout_only_ms": med["pdf"],
            "bytes": len(pdf),
            "pages": pages,
            "peak_python_bytes": pdf_peak,
        },
        "ratio_pdf_to_html": ratio,
        "cpu_ms": cpu,
        "ratio_pdf_to_html_cpu": round(cpu["pdf_whole"] / cpu["html_whole"], 2),
        "ratio_pdf_to_html_templates_only": round(med["pdf"] / med["html"], 2),
        "delivery": delivery,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "runs": runs,
        "targets": {
            "max_pdf_bytes": MAX_PDF_BYTES,
            "max_delivery_seconds_100": MAX_DELIVERY_SECONDS,
            "max_pdf_html_ratio": MAX_PDF_HTML_RATIO,
        },
        "met": {
            "max_pdf_bytes": len(pdf) <= MAX_PDF_BYTES,
            "max_delivery_seconds_100": delivery["worker_seconds"] <= MAX_DELIVERY_SECONDS,
            "max_pdf_html_ratio": ratio <= MAX_PDF_HTML_RATIO,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--recipients", type=int, default=100)
    args = parser.parse_args()
    if args.runs < 1 or args.recipients < 1:
        parser.error("--runs and --recipients must be ≥ 1")
    with throwaway_database():
        result = run(args.runs, args.recipients)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
