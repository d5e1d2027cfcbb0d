"""The data product catalogue: list with filters, detail, create and edit."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from valuetree import selectors


@login_required
def data_product_list(request: HttpRequest) -> HttpResponse:
    products = selectors.data_product_list()
    return render(request, "valuetree/catalogue/list.html", {"products": products})


def data_product_create(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError  # being built: data product forms


def data_product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    raise NotImplementedError


def data_product_edit(request: HttpRequest, slug: str) -> HttpResponse:
    raise NotImplementedError
