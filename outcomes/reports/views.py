"""Report schedules in the browser: the schedule page (owners), the delivery log with
resend, "Send a test", the unsubscribe page, the calendar feed."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.throttling import refused
from outcomes.reports import calendar, selectors, services
from outcomes.reports.forms import ScheduleForm
from outcomes.reports.models import Delivery
from valuetree.forms import add_service_errors
from valuetree.models import ValueTree
from valuetree.selectors import MANAGE_ROLES, trees_for_user


def _tree(request: HttpRequest, slug: str) -> ValueTree:
    return get_object_or_404(trees_for_user(request.user), slug=slug)


def _require_owner(tree: ValueTree) -> None:
    if tree.caller_role not in MANAGE_ROLES:
        raise PermissionDenied("Only the tree's owners manage its review schedule.")


def _initial(schedule: Any) -> dict[str, Any]:
    if schedule is None:
        return {
            "rrule": "FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO",
            "time_of_day": "09:00",
            "timezone": "UTC",
            "is_active": True,
            "recipient_roles": ["owner", "editor"],
            "channels": ["email"],
            "attach_pdf": True,
            "reminder_days": 0,
        }
    return {
        "rrule": schedule.rrule,
        "starts_on": schedule.starts_on,
        "time_of_day": schedule.time_of_day,
        "timezone": schedule.timezone,
        "is_active": schedule.is_active,
        "publish_mode": schedule.publish_mode,
        "send_policy": schedule.send_policy,
        "recipient_roles": schedule.recipient_roles,
        "extra_addresses": "\n".join(schedule.extra_addresses),
        "channels": schedule.channels,
        "attach_pdf": schedule.attach_pdf,
        "pdf_landscape": schedule.pdf_landscape,
        "reminder_days": schedule.reminder_days,
    }


@login_required
def schedule_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The tree's review schedule: in words, the next five dates, recipients, channels,
    policy, the delivery log; owners change it (others read it and subscribe)."""
    tree = _tree(request, slug)
    schedule = selectors.schedule_of(tree)
    is_owner = tree.caller_role in MANAGE_ROLES
    status = 200
    if request.method == "POST":
        _require_owner(tree)
        form = ScheduleForm(request.POST)
        if form.is_valid():
            try:
                services.schedule_save(tree=tree, by=request.user, **form.service_fields())
            except ValidationError as e:
                add_service_errors(form, e)
            else:
                messages.success(request, "Review schedule saved.")
                return redirect("outcomes:review-schedule", slug=tree.slug)
        status = 422
    else:
        form = ScheduleForm(initial=_initial(schedule))
    context = {
        "tree": tree,
        "schedule": schedule,
        "summary": selectors.schedule_summary(schedule) if schedule else None,
        "form": form if is_owner else None,
        "is_owner": is_owner,
        "deliveries": list(selectors.deliveries(tree)[: selectors.DELIVERY_LOG_ROWS])
        if is_owner
        else [],
        "runs": list(selectors.runs(tree)) if is_owner else [],
        "has_slack": bool(schedule and schedule.slack_webhook_encrypted),
        "has_teams": bool(schedule and schedule.teams_webhook_encrypted),
        "feed_url": request.session.pop(f"calendar-{tree.pk}", None),
    }
    return render(request, "outcomes/reports/schedule.html", context, status=status)


@login_required
@require_POST
def schedule_send_test(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Send a test": the latest published review to the current user only."""
    tree = _tree(request, slug)
    _require_owner(tree)
    try:
        services.send_test(tree=tree, user=request.user)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"A test is on its way to {request.user.email}.")
    return redirect("outcomes:review-schedule", slug=tree.slug)


@login_required
@require_POST
def schedule_calendar(request: HttpRequest, slug: str) -> HttpResponse:
    """Make a calendar-feed link for the current user (shown once) or revoke theirs."""
    tree = _tree(request, slug)
    if request.POST.get("action") == "revoke":
        count = calendar.calendar_tokens_revoke(user=request.user, tree=tree)
        messages.success(request, f"Revoked {count} calendar link{'s' if count != 1 else ''}.")
    else:
        token = calendar.calendar_token_issue(user=request.user, tree=tree)
        request.session[f"calendar-{tree.pk}"] = calendar.feed_url(token)
    return redirect("outcomes:review-schedule", slug=tree.slug)


@login_required
@require_POST
def delivery_resend(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = get_object_or_404(Delivery.objects.select_related("review"), pk=delivery_id)
    tree = get_object_or_404(trees_for_user(request.user), pk=delivery.review.tree_id)
    _require_owner(tree)
    try:
        services.delivery_resend(delivery=delivery, by=request.user)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"Queued again for {delivery.recipient}.")
    return redirect("outcomes:review-schedule", slug=tree.slug)


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


def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The iCalendar feed of a tree's review dates (no login: the token is the key)."""
    from outcomes.reports.calendar import feed_for_token

    body = feed_for_token(token)
    if body is None:
        return HttpResponse(
            "Unknown or revoked calendar link.", status=404, content_type="text/plain"
        )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="reviews.ics"'
    return response


@login_required
def review_pdf(request: HttpRequest, review_id: int) -> HttpResponse:
    """The review as the report's PDF: a published review's stored render, a draft's
    rendered now (not stored: it still changes)."""
    from outcomes.reports.render import render_build, review_render
    from outcomes.reviews.models import ValueReview

    review = get_object_or_404(ValueReview, pk=review_id)
    review.tree = get_object_or_404(trees_for_user(request.user), pk=review.tree_id)
    schedule = selectors.schedule_of(review.tree)
    landscape = request.GET.get("landscape") == "1" or bool(schedule and schedule.pdf_landscape)
    stored_landscape = bool(schedule and schedule.pdf_landscape)
    if review.is_published and landscape == stored_landscape:
        # The render the deliveries use (made once per review).
        pdf = bytes(review_render(review, landscape=landscape).pdf or b"")
    else:
        # A draft still changes; another orientation is not stored over the deliveries'.
        # Each such request renders anew, so it counts against the user's render rate.
        if too_many := refused(request, "renders", reads=True):
            return too_many
        pdf = render_build(review, landscape=landscape)["pdf"]
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="review-{review.tree.slug}-{review.pk}.pdf"'
    )
    return response
