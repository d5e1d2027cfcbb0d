"""How alike two data products are: trigram similarity over name, purpose and output
port names, so a team sees a product like theirs before building it twice.

On PostgreSQL the scores come from pg_trgm in the database; elsewhere (SQLite) the
same arithmetic runs in Python. Both follow pg_trgm's definition: the text is
lower-cased and split into words of letters and digits; each word, padded with two
spaces in front and one behind, gives its three-character substrings; the
similarity of two texts is |shared trigrams| / |all trigrams| (0 when either has
none). The score of a product is the weighted mean over the fields the new product
fills in, so an empty purpose neither helps nor hurts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.postgres.aggregates import StringAgg
from django.contrib.postgres.search import TrigramSimilarity
from django.db import connection
from django.db.models import F, FloatField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from valuetree.models import DataProduct, LifecycleStage, OutputPort

WEIGHTS = {"name": 0.5, "purpose": 0.3, "ports": 0.2}
# Below this a product is not shown as similar at all; at or above NOTIFY_SCORE its
# owner is told about the new product.
SHOW_SCORE = 0.2
NOTIFY_SCORE = 0.35

_WORD = re.compile(r"[^\W_]+")


def trigrams(text: str) -> set[str]:
    grams: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def trigram_similarity(a: str, b: str) -> float:
    first, second = trigrams(a), trigrams(b)
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


@dataclass(frozen=True)
class Probe:
    """What a product (saved or still being typed) is compared by."""

    name: str
    purpose: str = ""
    ports: str = ""  # output port names, space-separated

    @classmethod
    def of(cls, product: DataProduct) -> Probe:
        return cls(
            name=product.name,
            purpose=product.purpose,
            # all(): the ports a caller prefetched are not read again.
            ports=" ".join(port.name for port in product.output_ports.all()),
        )

    def weights(self) -> dict[str, float]:
        """The weight of each field the probe fills in, summing to 1."""
        filled = {key: w for key, w in WEIGHTS.items() if getattr(self, key).strip()}
        total = sum(filled.values())
        return {key: w / total for key, w in filled.items()} if total else {}


@dataclass(frozen=True)
class Similar:
    product: DataProduct
    score: float


def _candidates(exclude_pk: int | None) -> QuerySet[DataProduct]:
    # Retired products and those already marked as duplicates are settled.
    products = DataProduct.objects.exclude(stage=LifecycleStage.RETIRED).filter(
        duplicate_of__isnull=True
    )
    if exclude_pk is not None:
        products = products.exclude(pk=exclude_pk)
    return products.select_related("domain", "owner")


def similar_products(
    probe: Probe, *, exclude_pk: int | None = None, limit: int = 5, min_score: float = SHOW_SCORE
) -> list[Similar]:
    """The products most like ``probe``, best first, each with its score in [0, 1]."""
    weights = probe.weights()
    if not weights:
        return []
    if connection.vendor == "postgresql":
        return _similar_in_postgres(probe, weights, exclude_pk, limit, min_score)
    return _similar_in_python(probe, weights, exclude_pk, limit, min_score)


def _similar_in_python(
    probe: Probe, weights: dict[str, float], exclude_pk: int | None, limit: int, min_score: float
) -> list[Similar]:
    products = list(_candidates(exclude_pk))
    ports: dict[int, list[str]] = {}
    for product_id, name in OutputPort.objects.filter(
        data_product__in=[p.pk for p in products]
    ).values_list("data_product_id", "name"):
        ports.setdefault(product_id, []).append(name)
    scored = []
    for product in products:
        texts = {
            "name": product.name,
            "purpose": product.purpose,
            "ports": " ".join(ports.get(product.pk, [])),
        }
        score = sum(
            weight * trigram_similarity(getattr(probe, key), texts[key])
            for key, weight in weights.items()
        )
        if score >= min_score:
            scored.append(Similar(product, round(score, 3)))
    scored.sort(key=lambda s: (-s.score, s.product.name, s.product.pk))
    return scored[:limit]


def _similar_in_postgres(
    probe: Probe, weights: dict[str, float], exclude_pk: int | None, limit: int, min_score: float
) -> list[Similar]:
    port_names = (
        OutputPort.objects.filter(data_product=OuterRef("pk"))
        .order_by()
        .values("data_product")
        .annotate(names=StringAgg("name", delimiter=" "))
        .values("names")
    )
    fields = {
        "name": F("name"),
        "purpose": F("purpose"),
        "ports": Coalesce(Subquery(port_names), Value("")),
    }
    score = sum(
        (
            Value(weight) * TrigramSimilarity(fields[key], getattr(probe, key))
            for key, weight in weights.items()
        ),
        start=Value(0.0),
    )
    rows = (
        _candidates(exclude_pk)
        .annotate(score=Coalesce(score, Value(0.0), output_field=FloatField()))
        .filter(score__gte=min_score)
        .order_by("-score", "name", "pk")[:limit]
    )
    return [Similar(product, round(product.score, 3)) for product in rows]
