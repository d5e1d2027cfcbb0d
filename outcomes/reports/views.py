"""Report schedules in the browser: the schedule page (owners), the delivery log with
resend, "Send a test", the unsubscribe page, the calendar feed."""

from __future__ import annotations

from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from outcomes.reports import services
from valuetree.models import ValueTree


@csrf_exempt  # The signed token is the credential; RFC 8058 one-click posts carry no cookie.
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm; POST stops the tree's reports to the token's address."""
    try:
        value = signing.loads(token, salt=services.UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return render(request, "outcomes/reports/unsubscribe.html", {"invalid": True}, status=400)
    tree = ValueTree.objects.filter(pk=value.get("t")).only("name").first()
    done = False
    if request.method == "POST":
        try:
            services.unsubscribe(token=token)
        except ValidationError:
            return render(
                request, "outcomes/reports/unsubscribe.html", {"invalid": True}, status=400
            )
        done = True
    return render(
        request,
        "outcomes/reports/unsubscribe.html",
        {"tree": tree, "address": value.get("a"), "done": done},
    )
