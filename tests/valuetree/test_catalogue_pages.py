"""The data product catalogue in the browser, through Django's test client: the
filtered list and its htmx fragment, the detail page, and the create and edit forms."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import make_user
from valuetree import services
from valuetree.models import DataProduct, OutputPort

XSS = "<script>alert(1)</script>"
LIST = "/data-products/"


@pytest.fixture
def products(users, domains):
    """Three products; ``lab-results`` (owned by the tree owner) has two ports."""
    lab_results = services.data_product_create(
        name="Lab results",
        slug="lab-results",
        domain=domains["lab"],
        owner=users["owner"],
        owning_team="Lab platform",
        purpose="Turnaround of every test",
        description="Results as the analysers report them.",
        product_type="source_aligned",
        stage="live",
        output_ports=[
            {"name": "results", "kind": "table", "location": "warehouse.lab.results"},
            {"name": "results-api", "kind": "api", "location": "https://lab.example/api"},
        ],
    )
    sample_tracking = services.data_product_create(
        name="Sample tracking",
        slug="sample-tracking",
        domain=domains["lab"],
        owner=users["editor"],
        description="Where each sample is, from draw to bin.",
        stage="design",
    )
    invoices = services.data_product_create(
        name="Invoices",
        slug="invoices",
        domain=domains["finance"],
        owner=users["viewer"],
        purpose="Revenue per test",
        product_type="aggregate",
        stage="live",
        output_ports=[{"name": "invoices", "kind": "table", "location": ""}],
    )
    # Its owner has left (the owner is set null when a user is deleted).
    DataProduct.objects.filter(pk=invoices.pk).update(owner=None)
    invoices.refresh_from_db()
    return {"lab-results": lab_results, "sample-tracking": sample_tracking, "invoices": invoices}


def listed(html: str) -> set[str]:
    """The names of the products in the results table."""
    return set(re.findall(r'<td><a href="/data-products/[\w-]+/">([^<]*)</a></td>', html))


def squash(html: str) -> str:
    """The markup without the whitespace between tags."""
    return re.sub(r">\s+<", "><", html)


def field_block(html: str, field_id: str) -> str:
    """The markup of one form field: its label, input and errors."""
    match = re.search(rf'<p class="field[^"]*">\s*<label for="{field_id}">.*?</p>', html, re.S)
    assert match, f"no field {field_id}"
    return match.group(0)


def form_data(domain, /, *, owner: str = "viewer", ports=(), initial_ports: int = 0, **fields):
    """A POST of the data product form: fields, then ``ports`` as formset rows (each
    a dict; ``DELETE`` ticks the row's Remove box) plus one blank extra row."""
    data = {
        "name": "Test volumes",
        "slug": "test-volumes",
        "domain": str(domain.pk),
        "owner": owner,
        "owning_team": "Lab ops",
        "description": "How many tests a day.",
        "purpose": "Plan staffing.",
        "product_type": "aggregate",
        "stage": "build",
        **fields,
    }
    rows = [*ports, {}]
    data["ports-TOTAL_FORMS"] = str(len(rows))
    data["ports-INITIAL_FORMS"] = str(initial_ports)
    for index, row in enumerate(rows):
        for key in ("name", "kind", "location"):
            data[f"ports-{index}-{key}"] = row.get(key, "")
        if row.get("DELETE"):
            data[f"ports-{index}-DELETE"] = "on"
    return data


def stored_ports(product: DataProduct) -> list[tuple[str, str, str]]:
    return list(
        OutputPort.objects.filter(data_product=product)
        .order_by("name")
        .values_list("name", "kind", "location")
    )


# --- Access ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        LIST,
        "/data-products/new/",
        "/data-products/lab-results/",
        "/data-products/lab-results/edit/",
    ],
)
def test_anonymous_is_sent_to_login(client, products, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/data-products/nope/", "/data-products/nope/edit/"])
def test_unknown_slug_is_404(login, products, url):
    assert login("owner").get(url).status_code == 404


# --- List ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"Lab results", "Sample tracking", "Invoices"}),
        ("domain=lab", {"Lab results", "Sample tracking"}),
        ("stage=live", {"Lab results", "Invoices"}),
        ("domain=lab&stage=live", {"Lab results"}),
        ("domain=finance&stage=design", set()),
        ("q=revenue", {"Invoices"}),  # purpose, any case
        ("q=draw+to+bin", {"Sample tracking"}),  # description
        ("q=RESULTS", {"Lab results"}),  # name
        ("domain=lab&q=test", {"Lab results"}),  # Invoices' purpose matches, not its domain
    ],
)
def test_list_filters_and_searches(login, products, query, expected):
    response = login("viewer").get(f"{LIST}?{query}")
    assert response.status_code == 200
    assert listed(response.content.decode()) == expected


@pytest.mark.django_db
def test_a_long_search_is_taken_as_every_search_box_takes_it(login, products):
    """Over 200 characters, the list's own cap made the filter invalid: the search was
    dropped and every product listed. It takes the first 200 (search_query), as the
    header's search, the glossary and the picker do."""
    response = login("viewer").get(LIST, {"q": "revenue" + " " * 300 + "not searched"})
    assert response.status_code == 200
    assert listed(response.content.decode()) == {"Invoices"}


@pytest.mark.django_db
def test_list_page_has_labelled_filters_and_the_rows(login, products):
    html = login("viewer").get(f"{LIST}?domain=lab&stage=live&q=turnaround").content.decode()
    assert "<h1>Data products</h1>" in html
    assert '<label for="id_domain">Domain</label>' in html
    assert '<label for="id_stage">Lifecycle stage</label>' in html
    assert '<label for="id_q">Search</label>' in html
    # The filters are kept in the form, so the page can be bookmarked and reloaded.
    assert '<option value="lab" selected>Laboratory</option>' in html
    assert '<option value="live" selected>Live</option>' in html
    assert 'value="turnaround"' in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html
    assert (
        '<tr><td><a href="/data-products/lab-results/">Lab results</a></td><td>Laboratory</td>'
        '<td>Source-aligned</td><td><span class="badge stage stage--live">Live</span></td>'
        "<td>owner</td><td>2</td><td>0</td></tr>"
    ) in squash(html)
    assert "1 data product matches the filters" in html


@pytest.mark.django_db
def test_an_unknown_filter_value_is_reported_and_ignored(login, products):
    response = login("viewer").get(f"{LIST}?domain=nope&stage=live")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice" in field_block(html, "id_domain")
    assert listed(html) == {"Lab results", "Invoices"}


@pytest.mark.django_db
def test_htmx_gets_only_the_results(login, products):
    response = login("viewer").get(f"{LIST}?q=revenue", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert listed(html) == {"Invoices"}
    assert 'id="catalogue-table"' in html
    assert "<html" not in html
    assert "<h1>" not in html
    assert 'id="id_domain"' not in html  # the filter form stays on the page
    # One URL serves two bodies: caches must tell them apart.
    assert "HX-Request" in response["Vary"]


@pytest.mark.django_db
def test_htmx_history_restore_gets_the_whole_page(login, products):
    response = login("viewer").get(
        f"{LIST}?q=revenue", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    html = response.content.decode()
    assert "<html" in html
    assert listed(html) == {"Invoices"}


@pytest.mark.django_db
def test_list_counts_ports_and_only_the_nodes_the_viewer_can_see(login, users, tree, products):
    product = products["lab-results"]
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    bet = services.node_create(tree=tree, parent=goal, title="Automate triage")
    secret = services.tree_create(owner=make_user("ceo"), name="Secret", slug="secret", vision="V")
    services.membership_set(tree=secret, user=users["editor"], role="viewer")
    hidden = services.node_create(tree=secret, parent=None, title="Acquire a lab")
    # The same node twice (produces and uses) counts once.
    services.data_product_link(product=product, node=goal, role="produces")
    services.data_product_link(product=product, node=goal, role="uses")
    services.data_product_link(product=product, node=bet, role="uses")
    services.data_product_link(product=product, node=hidden, role="uses")

    def counts(role: str) -> dict[str, tuple[int, int]]:
        response = login(role).get(LIST)
        return {p.slug: (p.port_count, p.node_count) for p in response.context["products"]}

    assert counts("viewer")["lab-results"] == (2, 2)
    assert counts("editor")["lab-results"] == (2, 3)  # also a member of the secret tree
    assert counts("outsider")["lab-results"] == (2, 0)
    assert counts("viewer")["invoices"] == (1, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("size", [2, 25])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
def test_list_query_count_is_pinned(
    login, users, tree, domains, size, htmx, django_assert_num_queries
):
    goal = services.node_create(tree=tree, parent=None, title="Goal")
    for index in range(size):
        product = services.data_product_create(
            name=f"Product {index}",
            slug=f"product-{index}",
            domain=domains["lab" if index % 2 else "finance"],
            owner=users["owner"],
            output_ports=[{"name": "a", "kind": "table"}, {"name": "b", "kind": "api"}],
        )
        services.data_product_link(product=product, node=goal, role="uses")
    client = login("viewer")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    # Session, user, the products with their counts; the page adds the domain choices.
    with django_assert_num_queries(3 if htmx else 4):
        response = client.get(LIST, **headers)
    assert len(listed(response.content.decode())) == size


# --- Detail ----------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_shows_every_field_and_port(login, products):
    html = login("outsider").get("/data-products/lab-results/").content.decode()
    for text in (
        "<h1>Lab results</h1>",
        '<span class="badge stage stage--live">Live</span>',
        "<dd>Turnaround of every test</dd>",
        "<dd>Results as the analysers report them.</dd>",
        "<dd>Laboratory</dd>",
        "<dd>Source-aligned</dd>",
        "<dd>owner</dd>",
        "<dd>Lab platform</dd>",
        "<dd><code>lab-results</code></dd>",
        "<tr><td>results</td><td>table</td><td><code>warehouse.lab.results</code></td>\n"
        "        <td>—</td></tr>",
        "<tr><td>results-api</td><td>api</td><td><code>https://lab.example/api</code></td>\n"
        "        <td>—</td></tr>",
        "Not linked to any value-tree node you can see.",
    ):
        assert text in html


@pytest.mark.django_db
def test_detail_lists_only_nodes_of_trees_the_viewer_may_read(login, users, tree, products):
    product = products["lab-results"]
    goal = services.node_create(tree=tree, parent=None, title="Faster results")
    secret = services.tree_create(
        owner=make_user("ceo"), name="Secret plans", slug="secret", vision="Buy"
    )
    hidden = services.node_create(tree=secret, parent=None, title="Acquire a competitor")
    services.data_product_link(product=product, node=goal, role="produces")
    services.data_product_link(product=product, node=hidden, role="uses")

    html = login("viewer").get("/data-products/lab-results/").content.decode()
    assert f'<a href="/nodes/{goal.pk}/">Faster results</a>' in html
    assert '<a href="/trees/tree/">Tree</a>' in html
    assert "<td>Produces</td>" in html
    assert "Acquire a competitor" not in html
    assert "Secret plans" not in html

    html = login("outsider").get("/data-products/lab-results/").content.decode()
    assert "Faster results" not in html
    assert "Acquire a competitor" not in html
    assert "Not linked to any value-tree node you can see." in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "can_edit"),
    [("owner", True), ("staff", True), ("editor", False), ("viewer", False), ("outsider", False)],
)
def test_detail_offers_edit_only_to_the_owner_and_staff(login, users, products, who, can_edit):
    user = make_user("staff", is_staff=True) if who == "staff" else users[who]
    html = login(user).get("/data-products/lab-results/").content.decode()
    assert ('href="/data-products/lab-results/edit/"' in html) is can_edit


@pytest.mark.django_db
def test_user_text_is_escaped_everywhere(login, users, tree, domains):
    services.data_product_create(
        name=XSS,
        slug="xss",
        domain=domains["lab"],
        owner=users["owner"],
        owning_team=XSS,
        purpose=XSS,
        output_ports=[{"name": XSS, "kind": XSS, "location": XSS}],
    )
    node = services.node_create(tree=tree, parent=None, title=XSS)
    services.data_product_link(product=DataProduct.objects.get(slug="xss"), node=node, role="uses")
    client = login("owner")
    pages = [
        client.get(LIST).content.decode(),
        client.get(f"{LIST}?q={XSS}").content.decode(),  # echoed in the search box
        client.get(LIST, HTTP_HX_REQUEST="true").content.decode(),
        client.get("/data-products/xss/").content.decode(),
        client.get("/data-products/xss/edit/").content.decode(),
    ]
    for html in pages:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert XSS not in html


# --- Create ----------------------------------------------------------------------


@pytest.mark.django_db
def test_create_form_has_a_label_for_every_field_and_defaults_the_owner(login, domains):
    html = login("viewer").get("/data-products/new/").content.decode()
    for field_id in (
        "id_name",
        "id_slug",
        "id_domain",
        "id_owner",
        "id_owning_team",
        "id_description",
        "id_purpose",
        "id_product_type",
        "id_stage",
        "id_ports-0-name",
        "id_ports-0-kind",
        "id_ports-0-location",
    ):
        assert f'<label for="{field_id}">' in html
        assert f'id="{field_id}"' in html
    assert '<option value="viewer" selected>viewer</option>' in html
    assert 'name="ports-TOTAL_FORMS" value="1"' in html


@pytest.mark.django_db
def test_create_with_two_ports_stores_the_product_and_its_ports(login, users, domains):
    client = login("viewer")
    response = client.post(
        "/data-products/new/",
        form_data(
            domains["lab"],
            ports=[
                {"name": "daily", "kind": "table", "location": "warehouse.lab.daily"},
                {"name": "dashboard", "kind": "dashboard"},
            ],
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/test-volumes/"
    product = DataProduct.objects.get(slug="test-volumes")
    assert (product.name, product.domain, product.owner, product.stage, product.product_type) == (
        "Test volumes",
        domains["lab"],
        users["viewer"],
        "build",
        "aggregate",
    )
    assert stored_ports(product) == [
        ("daily", "table", "warehouse.lab.daily"),
        ("dashboard", "dashboard", ""),
    ]
    html = client.get(response["Location"]).content.decode()
    assert "Data product “Test volumes” created." in html


@pytest.mark.django_db
def test_create_and_add_another_port_goes_on_to_the_edit_form(login, domains):
    response = login("viewer").post(
        "/data-products/new/", {**form_data(domains["lab"]), "_another_port": "1"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/test-volumes/edit/"


@pytest.mark.django_db
def test_create_with_a_taken_slug_shows_the_error_by_the_slug_and_writes_nothing(
    login, products, domains
):
    before = (DataProduct.objects.count(), OutputPort.objects.count())
    response = login("viewer").post(
        "/data-products/new/",
        form_data(domains["lab"], slug="lab-results", ports=[{"name": "x", "kind": "table"}]),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Data product with this Slug already exists." in field_block(html, "id_slug")
    assert (DataProduct.objects.count(), OutputPort.objects.count()) == before
    assert 'value="Test volumes"' in html  # the user's input is kept


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"name": ""}, "id_name", "This field is required."),
        ({"domain": ""}, "id_domain", "This field is required."),
        ({"owner": ""}, "id_owner", "This field is required."),
        ({"slug": "not a slug"}, "id_slug", "Enter a valid “slug”"),
        ({"stage": "launched"}, "id_stage", "Select a valid choice."),
    ],
)
def test_create_refuses_bad_fields_next_to_them(login, domains, changes, field_id, message):
    response = login("viewer").post("/data-products/new/", form_data(domains["lab"], **changes))
    assert response.status_code == 400
    assert message in field_block(response.content.decode(), field_id)
    assert not DataProduct.objects.exists()


@pytest.mark.django_db
def test_create_refuses_ports_with_the_same_name(login, domains):
    response = login("viewer").post(
        "/data-products/new/",
        form_data(
            domains["lab"],
            ports=[{"name": "daily", "kind": "table"}, {"name": "daily", "kind": "api"}],
        ),
    )
    assert response.status_code == 400
    assert "Port names must be unique: daily." in response.content.decode()
    assert not DataProduct.objects.exists()
    assert not OutputPort.objects.exists()


@pytest.mark.django_db
def test_a_port_needs_a_kind(login, domains):
    response = login("viewer").post(
        "/data-products/new/", form_data(domains["lab"], ports=[{"name": "daily"}])
    )
    assert response.status_code == 400
    assert "This field is required." in field_block(response.content.decode(), "id_ports-0-kind")
    assert not DataProduct.objects.exists()


# --- Edit ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["editor", "viewer", "outsider"])
def test_only_the_owner_or_staff_may_edit(login, products, domains, who):
    client = login(who)
    assert client.get("/data-products/lab-results/edit/").status_code == 403
    response = client.post(
        "/data-products/lab-results/edit/",
        form_data(domains["lab"], name="Taken over", slug="lab-results", owner=who),
    )
    assert response.status_code == 403
    assert DataProduct.objects.get(slug="lab-results").name == "Lab results"


@pytest.mark.django_db
def test_an_ownerless_product_is_edited_by_staff_only(login, products, domains):
    assert login("viewer").get("/data-products/invoices/edit/").status_code == 403
    assert (
        login(make_user("staff", is_staff=True)).get("/data-products/invoices/edit/").status_code
        == 200
    )


@pytest.mark.django_db
def test_edit_form_shows_the_product_as_stored(login, products):
    html = login("owner").get("/data-products/lab-results/edit/").content.decode()
    assert '<option value="owner" selected>owner</option>' in html
    assert 'value="Lab results"' in html
    assert 'name="ports-INITIAL_FORMS" value="2"' in html
    assert 'name="ports-TOTAL_FORMS" value="3"' in html
    assert 'name="ports-0-name" value="results"' in html
    assert 'name="ports-1-location" value="https://lab.example/api"' in html
    assert '<label for="id_ports-0-DELETE">Remove this port</label>' in html
    assert "id_ports-2-DELETE" not in html  # nothing to remove on the blank row


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "staff"])
def test_edit_by_the_owner_or_staff_replaces_the_ports(login, users, products, domains, who):
    user = make_user("staff", is_staff=True) if who == "staff" else users[who]
    client = login(user)
    response = client.post(
        "/data-products/lab-results/edit/",
        form_data(
            domains["lab"],
            name="Lab results v2",
            slug="lab-results",
            owner="owner",
            stage="deprecated",
            initial_ports=2,
            ports=[
                {"name": "results", "kind": "table", "location": "old", "DELETE": True},
                {"name": "results-api", "kind": "api", "location": "https://lab.example/v2"},
                {"name": "results-stream", "kind": "stream", "location": "kafka://lab"},
            ],
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/lab-results/"
    product = DataProduct.objects.get(slug="lab-results")
    assert (product.name, product.stage, product.owner) == (
        "Lab results v2",
        "deprecated",
        users["owner"],
    )
    assert stored_ports(product) == [
        ("results-api", "api", "https://lab.example/v2"),
        ("results-stream", "stream", "kafka://lab"),
    ]
    assert (
        "Data product “Lab results v2” saved."
        in client.get("/data-products/lab-results/").content.decode()
    )


@pytest.mark.django_db
def test_a_refused_edit_changes_nothing_and_keeps_the_stored_address(login, products, domains):
    response = login("owner").post(
        "/data-products/lab-results/edit/",
        form_data(
            domains["lab"],
            name="Renamed",
            slug="invoices",  # taken
            owner="owner",
            stage="live",
            ports=[{"name": "only", "kind": "table"}],
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Data product with this Slug already exists." in field_block(html, "id_slug")
    # Title and form action still name the stored product, not the refused input.
    assert "<h1>Edit “Lab results”</h1>" in html
    assert 'action="/data-products/lab-results/edit/"' in html
    product = DataProduct.objects.get(slug="lab-results")
    assert product.name == "Lab results"
    assert [name for name, _, _ in stored_ports(product)] == ["results", "results-api"]


@pytest.mark.django_db
def test_handing_a_product_over_returns_to_its_page(login, users, products, domains):
    """The previous owner may no longer edit, so "add another port" cannot go on to
    the edit form."""
    response = login("owner").post(
        "/data-products/lab-results/edit/",
        {
            **form_data(
                domains["lab"],
                name="Lab results",
                slug="lab-results",
                owner="editor",
                stage="live",
                ports=[{"name": "results", "kind": "table"}],
            ),
            "_another_port": "1",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/data-products/lab-results/"
    assert DataProduct.objects.get(slug="lab-results").owner == users["editor"]
