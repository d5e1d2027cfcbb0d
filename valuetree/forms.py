"""Browser forms. They validate input; the services (which they call through the
views) enforce the rules, and a service's ValidationError is shown next to its field."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from valuetree.models import Membership, Node, Role, ValueTree

User = get_user_model()


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: by field where it names one the
    form has, otherwise at the top of the form."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


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


class TreeForm(forms.ModelForm):
    class Meta:
        model = ValueTree
        fields = ["name", "slug", "vision", "description"]
        widgets = {
            "vision": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {"slug": "Letters, digits and hyphens; used in the tree's address."}


class NodeForm(forms.ModelForm):
    owner = UsernameField()
    accountable = UsernameField()
    # Ranges on the form too, so they show with the other field errors.
    confidence = forms.IntegerField(
        min_value=0, max_value=100, required=False, help_text="How sure we are, 0–100."
    )
    weight = forms.FloatField(min_value=0, initial=1.0)

    class Meta:
        model = Node
        fields = [
            "title",
            "description",
            "hypothesis",
            "owner",
            "accountable",
            "investment_amount",
            "investment_unit",
            "expected_value_amount",
            "expected_value_unit",
            "confidence",
            "weight",
            "status",
        ]
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

    def __init__(self, *args: object, kind: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
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

    def _post_clean(self) -> None:
        # The services validate the model (kind rules need the parent); skip the
        # ModelForm's own instance validation so errors are not reported twice.
        pass


class MembershipForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
    )
    role = forms.ChoiceField(choices=Role.choices)


class MembershipRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def _post_clean(self) -> None:
        pass
