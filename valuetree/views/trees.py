from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from valuetree import selectors


def home(request: HttpRequest) -> HttpResponse:
    """The trees the visitor may read, and where to go next."""
    trees = selectors.tree_list(user=request.user) if request.user.is_authenticated else []
    return render(request, "valuetree/home.html", {"trees": trees})
