"""Browser forms. They validate input; the services (which they call through the
views) enforce the rules, and a service's ValidationError is shown next to its field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator

from valuetree import interchange
from valuetree.models import (
    MAX_WEIGHT,
    PLANNED_STAGES,
    DataProduct,
    Domain,
    GlossaryTerm,
    LifecycleStage,
    Membership,
    Node,
    Role,
    ValueTree,
)
from valuetree.selectors import search_query
from valuetree.services import (
    DATA_PRODUCT_FIELDS,
    DUPLICATE_OUTCOMES,
    NODE_FIELDS,
    stage_moves,
)

User = get_user_model()


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: by field where it names one the
    form has, otherwise at the top of the form."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


# --- Date and time inputs ------------------------------------------------------------------
# A browser's <input type=date|datetime-local|time> shows and submits only ISO values
# (HTML Living Standard, "valid date string", "valid normalized local date and time
# string", "valid time string"). Django renders a date with the first of the locale's
# input formats (en-GB: 01/09/2026), which such an input cannot show: the field looks
# empty and the browser refuses to submit. These widgets always render ISO; the parsing
# side already accepts ISO in every locale.


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, object] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, object] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs: dict[str, object] | None = None) -> None:
        super().__init__(attrs, format="%H:%M")


# Field class -> the ISO widget it gets. DateTimeField first: no subclassing between
# them today, but the most specific match must win if that changes.
HTML_INPUTS: tuple[tuple[type[forms.Field], type[forms.Widget]], ...] = (
    (forms.DateTimeField, DateTimeInput),
    (forms.DateField, DateInput),
    (forms.TimeField, TimeInput),
)


def use_html_inputs(form: forms.BaseForm) -> None:
    """Give every date, datetime and time field of ``form`` the browser's own input,
    rendering ISO values (the attributes set on the old widget are kept). Called by
    ``HtmlInputsMixin``; a widget that is not Django's default text input for the field
    (a hidden input, a select) is left alone."""
    for field in form.fields.values():
        for field_class, widget_class in HTML_INPUTS:
            if isinstance(field, field_class):
                if isinstance(field.widget, forms.HiddenInput | widget_class):
                    break
                if isinstance(
                    field.widget, forms.DateInput | forms.DateTimeInput | forms.TimeInput
                ):
                    field.widget = widget_class(attrs=dict(field.widget.attrs))
                break


class HtmlInputsMixin:
    """Every form of the project derives from this (directly or through
    ``ServiceModelForm``/``HtmlInputsForm``), so no date input ever renders a value the
    browser cannot show. tests/test_form_dates.py checks every form class."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        use_html_inputs(self)


class HtmlInputsForm(HtmlInputsMixin, forms.Form):
    """A plain form with ISO date/time inputs."""


class UsernameField(forms.ModelChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            queryset=User.objects.filter(is_active=True).order_by("username"),
            to_field_name="username",
            required=False,
            **kwargs,
        )

    def label_from_instance(self, obj: object) -> str:
        full_name = obj.get_full_name()
        return f"{full_name} ({obj.get_username()})" if full_name else obj.get_username()


class ServiceModelForm(HtmlInputsMixin, forms.ModelForm):
    """A ModelForm whose instance a service validates and saves.

    The form checks its fields; the service runs ``full_clean()`` and the rules that
    need more than one field, so the ModelForm's own instance validation is skipped
    (errors would be reported twice). Username choices start on the current user.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            # The ModelForm's initial is the user's id, but the choices are usernames:
            # without this an edit would show no owner and save it as empty.
            related_id = getattr(self.instance, f"{name}_id", None)
            if (
                isinstance(field, UsernameField)
                and related_id is not None
                and self.initial.get(name) == related_id
            ):
                self.initial[name] = getattr(self.instance, name)

    def _post_clean(self) -> None:
        pass


class TreeForm(forms.ModelForm):
    class Meta:
        model = ValueTree
        fields = ["name", "slug", "vision", "description"]
        widgets = {
            "vision": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 3}),
            "slug": forms.TextInput(attrs={"data-slug-from": "name", "data-slug-prefix": "tree"}),
        }
        help_texts = {
            "slug": "Letters, digits and hyphens; used in the tree's address. "
            "Suggested from the name; change it if you like."
        }


class NodeForm(ServiceModelForm):
    owner = UsernameField()
    accountable = UsernameField()
    # Ranges on the form too, so they show with the other field errors.
    confidence = forms.IntegerField(
        min_value=0, max_value=100, required=False, help_text="How sure we are, 0–100."
    )
    weight = forms.FloatField(
        min_value=0,
        max_value=MAX_WEIGHT,
        initial=1.0,
        help_text="How much this counts in its parent's verdict, beside its siblings (1 = equal).",
    )
    # Shown first; the rest fold under "More details" (their errors open it).
    FIRST_FIELDS = ("title", "hypothesis", "owner", "confidence")

    class Meta:
        model = Node
        fields = list(NODE_FIELDS)  # what node_update lets change
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "hypothesis": forms.Textarea(
                attrs={
                    "rows": 3,
                    "placeholder": "We believe that … will result in …; we will know when …",
                }
            ),
        }
        labels = {"description": "Outcome / description"}
        help_texts = {
            "owner": "Who drives the work day to day.",
            "accountable": "Who answers for the outcome (often an executive); may be the owner.",
            "investment_amount": "What it costs: money or effort, in the unit beside it.",
            "expected_value_amount": "What it should bring when it works, in the unit beside it.",
            "status": "Proposed, active, done or killed; killed work leaves the active tree.",
        }

    def __init__(self, *args: object, kind: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.folded_fields = [name for name in self.fields if name not in self.FIRST_FIELDS]
        if kind == "goal":
            # Goals carry no hypothesis, investment or expected value of their own.
            for name in (
                "hypothesis",
                "investment_amount",
                "investment_unit",
                "expected_value_amount",
                "expected_value_unit",
            ):
                del self.fields[name]


class MembershipForm(forms.Form):
    """Add a member. Only people not yet in the tree are offered: roles of members
    are changed in the members table."""

    user = forms.ModelChoiceField(queryset=User.objects.none(), to_field_name="username")
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args: object, tree: ValueTree, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            User.objects.filter(is_active=True)
            .exclude(tree_memberships__tree=tree)
            .order_by("username")
        )


class MembershipRoleForm(ServiceModelForm):
    class Meta:
        model = Membership
        fields = ["role"]


# --- Data products ---------------------------------------------------------------------


class SearchField(forms.CharField):
    """A filter's search box: text of any length, taken as every search box takes it
    (``selectors.search_query``: trimmed, its first SEARCH_QUERY_MAX characters). Never
    an error: a long text refused here dropped the search and listed everything."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(label="Search", required=False, **kwargs)

    def to_python(self, value: Any) -> str:
        return search_query(super().to_python(value))


class DataProductFilterForm(forms.Form):
    """The catalogue's filters. Read from the query string, so a filtered list is a
    link that can be shared and works without JavaScript."""

    domain = forms.ModelChoiceField(
        queryset=Domain.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        empty_label="All domains",
    )
    stage = forms.ChoiceField(
        label="Lifecycle stage",
        choices=[("", "All stages"), *LifecycleStage.choices],
        required=False,
    )
    q = SearchField()


class DataProductForm(ServiceModelForm):
    owner = UsernameField()

    class Meta:
        model = DataProduct
        # What the data product services let change; a new stage is a transition.
        fields = [*DATA_PRODUCT_FIELDS, "stage"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "purpose": forms.Textarea(attrs={"rows": 2}),
            "slug": forms.TextInput(
                attrs={"data-slug-from": "name", "data-slug-prefix": "product"}
            ),
        }
        labels = {"product_type": "Product type", "stage": "Lifecycle stage"}
        help_texts = {
            "slug": "Letters, digits and hyphens; used in the product's address.",
            "purpose": "What it is for: the decisions or outcomes it serves.",
        }

    def __init__(self, *args: object, user: Any = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Someone must answer for a product; an ownerless one only staff could change.
        self.fields["owner"].required = True
        self.fields["owner"].empty_label = "Choose an owner"
        if not self.instance.pk and user is not None and not user.is_staff:
            # Who proposes a product owns it; they hand it over once it exists.
            owner = self.fields["owner"]
            owner.queryset = owner.queryset.filter(pk=user.pk)
            owner.help_text = "You own what you propose; hand it over once it exists."
        self.fields["domain"].empty_label = "Choose a domain"
        if self.instance.pk:
            # Only the moves the lifecycle allows from where the product is now.
            allowed = {self.instance.stage, *stage_moves(self.instance.stage)}
            self.fields["stage"].choices = [
                (value, label) for value, label in LifecycleStage.choices if value in allowed
            ]


class OutputPortForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.CharField(
        max_length=50,
        widget=forms.TextInput(attrs={"placeholder": "table, api, file, stream…"}),
    )
    location = forms.CharField(max_length=500, required=False)


class BaseOutputPortFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return  # a row's own errors first; the names may not be known yet
        # Checked here as well as in the service so the message sits with the ports.
        names = [port["name"] for port in self.ports()]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValidationError(f"Port names must be unique: {', '.join(duplicates)}.")

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = "Remove this port"

    def ports(self) -> list[dict[str, str]]:
        """The ports to keep, as the service takes them: blank extra rows and rows
        marked for removal left out."""
        return [
            {key: form.cleaned_data[key] for key in ("name", "kind", "location")}
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


OutputPortFormSet = forms.formset_factory(
    OutputPortForm,
    formset=BaseOutputPortFormSet,
    extra=1,
    can_delete=True,
    # A blank new row has nothing to remove.
    can_delete_extra=False,
)


# --- The open catalogue: board, early consumers, lifecycle, duplicates ------------------


class BoardFilterForm(forms.Form):
    """The discovery board's filters: a shareable link, as in the catalogue."""

    domain = DataProductFilterForm.base_fields["domain"]
    stage = forms.ChoiceField(
        label="Stage",
        choices=[("", "Discovery and design"), *[(s.value, s.label) for s in PLANNED_STAGES]],
        required=False,
    )
    q = SearchField()


class InitiativeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: object) -> str:
        return f"{obj.tree.name} › {obj.title}"


class ConsumerInterestForm(forms.Form):
    """Register a team as an early consumer of a planned product."""

    team = forms.CharField(max_length=200, help_text="The team that would consume it.")
    node = InitiativeChoiceField(
        label="Initiative",
        queryset=Node.objects.none(),
        empty_label="Choose an initiative",
        help_text="The initiative it would serve (in a tree you edit).",
    )
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you would use it for.",
    )

    def __init__(self, *args: object, initiatives: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = initiatives


class TransitionForm(forms.Form):
    stage = forms.ChoiceField(label="Move to", choices=LifecycleStage.choices)
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why (kept with the move; sent with a deprecation).",
    )

    def __init__(self, *args: object, product: DataProduct, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        moves = stage_moves(product.stage)
        self.fields["stage"].choices = [
            (value, label) for value, label in LifecycleStage.choices if value in moves
        ]


class DuplicateForm(forms.Form):
    original = forms.ModelChoiceField(
        queryset=DataProduct.objects.exclude(stage=LifecycleStage.RETIRED),
        to_field_name="slug",
        label="Duplicate of",
    )
    then = forms.ChoiceField(label="Then", choices=DUPLICATE_OUTCOMES, initial="keep")


class StandardsImportForm(forms.Form):
    """A Bitol document to import: ODPS data products or an ODCS data contract."""

    STANDARDS = [
        ("odps", "Data products (Bitol ODPS YAML; several as a --- stream)"),
        ("odcs", "A data contract (Bitol ODCS YAML)"),
    ]
    standard = forms.ChoiceField(choices=STANDARDS, widget=forms.RadioSelect, initial="odps")
    file = forms.FileField(required=False, help_text="A .yaml, .yml or .json file…")
    text = forms.CharField(
        label="…or the document itself",
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
    )
    product = forms.SlugField(
        label="Data product (contracts)",
        required=False,
        help_text="The product whose port the contract is for; default: its dataProduct.",
    )
    port = forms.CharField(
        label="Output port (contracts)",
        required=False,
        max_length=200,
        help_text="Default: the port already holding a contract of this id, or its "
        "outputPort custom property.",
    )

    def clean(self) -> dict[str, object]:
        data = super().clean()
        upload, text = data.get("file"), data.get("text", "")
        if upload and text.strip():
            raise ValidationError("Give a file or the document's text, not both.")
        if not upload and not text.strip():
            raise ValidationError("Give a file or paste the document.")
        return data

    def document(self) -> tuple[bytes | str, str]:
        """The document and its format (``yaml`` or ``json``)."""
        upload = self.cleaned_data.get("file")
        if not upload:
            return self.cleaned_data["text"], "yaml"
        # One byte past the limit is enough for the import to refuse it by its size.
        raw = upload.read(interchange.MAX_DOCUMENT_BYTES + 1)
        return raw, "json" if upload.name.lower().endswith(".json") else "yaml"


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. “CI pipeline”.")
    days = forms.IntegerField(label="Expires after (days)", min_value=1)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Read when the form is made, so a changed setting (or a test's) applies.
        self.fields["days"].max_value = settings.API_TOKEN_MAX_DAYS
        self.fields["days"].validators.append(MaxValueValidator(settings.API_TOKEN_MAX_DAYS))


def term_forms_text(values: list[str]) -> str:
    """A term's synonyms (or abbreviations) as its form's box shows them, what
    :func:`term_forms_values` reads back: ", " between them, one holding a comma, a
    ";" or a double quote put in double quotes (its quotes doubled), as a CSV row
    would have it: ``client, "gross; before returns", 6" pipe``."""

    def shown(value: str) -> str:
        if any(char in value for char in ',;"'):
            return '"' + value.replace('"', '""') + '"'
        return value

    return ", ".join(shown(value) for value in values)


def term_forms_values(text: str) -> list[str]:
    """The entries of a synonyms or abbreviations box: split on "," and ";" outside
    double quotes, each stripped, empty ones dropped. A double quote opening an entry
    starts a quoted one (``""`` inside is one quote; unclosed, it runs to the end), one
    anywhere else is kept; text without double quotes splits on every "," and ";", as
    it always did. Saving a term's form keeps "gross; before returns" one synonym."""
    entries: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == '"' and text[index + 1 : index + 2] == '"':
                current.append('"')
                index += 1
            elif char == '"':
                quoted = False
            else:
                current.append(char)
        elif char in ",;":
            entries.append("".join(current))
            current = []
        elif char == '"' and not "".join(current).strip():
            quoted, current = True, []
        else:
            current.append(char)
        index += 1
    entries.append("".join(current))
    return [entry.strip() for entry in entries if entry.strip()]


class TermFormsField(forms.CharField):
    """A box of a term's synonyms or abbreviations: a list (:func:`term_forms_values`)."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return term_forms_values(super().to_python(value))


class GlossaryTermForm(forms.Form):
    """A glossary term; synonyms and abbreviations separated by commas (one holding a
    comma or ";" in double quotes)."""

    name = forms.CharField(max_length=200)
    definition = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    synonyms = TermFormsField(
        required=False,
        help_text='Other words for it, separated by commas: client, shopper, "gross; net".',
    )
    abbreviations = TermFormsField(required=False, help_text="Separated by commas: SKU, ETA.")
    domain = forms.ModelChoiceField(
        queryset=Domain.objects.all(),
        required=False,
        to_field_name="slug",
        help_text="Empty: a term of the whole company (staff only).",
    )
    data_products = forms.ModelMultipleChoiceField(
        queryset=DataProduct.objects.order_by("name"),
        required=False,
        to_field_name="slug",
        help_text="The data products this term describes.",
    )

    @staticmethod
    def initial_for(term: GlossaryTerm) -> dict[str, object]:
        return {
            "name": term.name,
            "definition": term.definition,
            "synonyms": term_forms_text(term.synonyms),
            "abbreviations": term_forms_text(term.abbreviations),
            "domain": term.domain,
            "data_products": list(term.data_products.all()),
        }
