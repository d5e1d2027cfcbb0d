"""A user's API tokens: list, create (the token is shown once) and revoke."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from valuetree import selectors, services
from valuetree.forms import ApiTokenForm, add_service_errors


@never_cache  # the page that shows a new token must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    created = None
    form = ApiTokenForm(initial={"days": settings.API_TOKEN_DAYS})
    if request.method == "POST":
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            try:
                token, created = services.api_token_create(user=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                form = ApiTokenForm(initial={"days": settings.API_TOKEN_DAYS})
    return render(
        request,
        "valuetree/tokens.html",
        {"tokens": selectors.api_tokens_for(request.user), "form": form, "created": created},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_key: str) -> HttpResponse:
    if services.api_token_revoke(user=request.user, token_key=token_key):
        messages.success(request, "Token revoked: it no longer opens the API.")
    else:
        # Someone else's key or one revoked already: the same answer either way.
        messages.error(request, "No such token of yours.")
    return redirect("valuetree:tokens")
