"""Duplicate detection across domains: does a product described in other words find
its twin, do unrelated products stay below "notify", and is it fast enough?

    python bench/similarity.py [--catalogue bench/similarity_catalogue.yaml ...]

The catalogue (YAML: domains, products with name/purpose/usage/ports/columns, and
`twins` as pairs of slugs) is loaded into a throw-away database with the default
glossary (valuetree/demo/glossary.yaml), through the services, so the stored
embeddings are the ones the app computes. Each product of a twin pair is then scored
as a draft against the rest. Prints one JSON object:

- twin_first / twin_in_top3: pairs (of `pairs`) whose twin is ranked first / in the
  top 3, in both directions; the `_directed` figures count each direction alone.
- highest_non_twin: the best score of any product against one that is not its twin
  (target: below notify_score).
- `*_known_duplicates`: the same figures when a catalogue lists `duplicates`, pairs
  of slugs that are one product too although not a twin pair (merged catalogues
  written apart can hold the same product twice: b17's "Fleet fuel consumption" is
  the main catalogue's). A product ranked above the twin that is the same product as
  the draft or its twin (through twins and duplicates) does not push the twin down,
  and does not count as a non-twin. Without `duplicates` they equal the figures above.
- score_draft_vs_10000_ms: median time of `similar_products` for one draft against
  10,000 stored products (target ≤ 100 ms).
- embed_1000_s: time to embed and store 1,000 products (target ≤ 10 s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import yaml  # noqa: E402
from _common import ROOT, check, log, median_ms, throwaway_database, timed_ms
from django.db import transaction  # noqa: E402

from valuetree import services  # noqa: E402
from valuetree.models import (  # noqa: E402
    DataContract,
    DataProduct,
    DataProductEmbedding,
    Domain,
    OutputPort,
)
from valuetree.similarity import (  # noqa: E402
    NOTIFY_SCORE,
    SHOW_SCORE,
    Glossary,
    embedder,
    probe_of,
    products_with_text,
    similar_products,
    trigram_similarity,
)


def read_catalogues(paths: list[Path]) -> dict:
    """The catalogues' domains, products and twins, merged in order."""
    merged: dict = {"domains": [], "products": [], "twins": [], "duplicates": []}
    for path in paths:
        data = yaml.safe_load(path.read_text())
        merged["domains"] += [d for d in data["domains"] if d not in merged["domains"]]
        merged["products"] += data["products"]
        merged["twins"] += data["twins"]
        merged["duplicates"] += data.get("duplicates") or []
    return merged


def load_catalogue(
    paths: list[Path],
) -> tuple[dict[str, DataProduct], list[tuple[str, str]], list[tuple[str, str]]]:
    data = read_catalogues(paths)
    services.glossary_import(
        rows=yaml.safe_load((ROOT / "valuetree/demo/glossary.yaml").read_text())["terms"],
        by=None,
    )
    domains = {
        slug: Domain.objects.create(name=slug.title(), slug=slug) for slug in data["domains"]
    }
    products = {}
    for item in data["products"]:
        with transaction.atomic():
            product = services.data_product_create(
                slug=item["slug"],
                name=item["name"],
                domain=domains[item["domain"]],
                purpose=item.get("purpose", ""),
                description=item.get("usage", ""),
                output_ports=[{"name": name, "kind": "table"} for name in item.get("ports", [])],
            )
            columns = item.get("columns") or []
            if columns and item.get("ports"):
                port = OutputPort.objects.get(data_product=product, name=item["ports"][0])
                DataContract.objects.create(
                    output_port=port,
                    contract_id=f"{item['slug']}-v1",
                    schema=[
                        {
                            "name": item["ports"][0],
                            "properties": [
                                {"name": name, "description": text} for name, text in columns
                            ],
                        }
                    ],
                )
        products[item["slug"]] = product
    services.data_product_embeddings_refresh()
    return (
        products,
        [tuple(pair) for pair in data["twins"]],
        [tuple(pair) for pair in data["duplicates"]],
    )


def same_product_groups(pairs: list[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Each slug of ``pairs`` (twins and known duplicates) → every slug that is the
    same product (the connected component, the slug included)."""
    neighbours: dict[str, set[str]] = {}
    for a, b in pairs:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    groups: dict[str, frozenset[str]] = {}
    for start in neighbours:
        if start in groups:
            continue
        seen, todo = {start}, [start]
        while todo:
            for other in neighbours[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        for slug in seen:
            groups[slug] = frozenset(seen)
    return groups


def rank_twins(
    products: dict[str, DataProduct],
    twins: list[tuple[str, str]],
    duplicates: list[tuple[str, str]] = (),
) -> dict:
    glossary = Glossary.load()
    same = same_product_groups([*twins, *duplicates])
    lenient: dict[tuple[str, str], int] = {}
    highest_other = 0.0
    by_slug = {p.slug: p for p in products_with_text()}
    ranks: dict[tuple[str, str], int] = {}
    twin_of = dict(twins) | {b: a for a, b in twins}
    highest_non_twin = (0.0, None)
    twin_scores = []
    for slug, product in by_slug.items():
        found = similar_products(
            probe_of(product), exclude_pk=product.pk, limit=10, min_score=0.0, glossary=glossary
        )
        slugs = [m.product.slug for m in found]
        if os.environ.get("SIMILARITY_DUMP"):
            with open(os.environ["SIMILARITY_DUMP"], "a") as dump:
                for m in found:
                    twin_flag = m.product.slug == twin_of.get(slug)
                    dump.write(
                        json.dumps([slug, m.product.slug, twin_flag, m.signals, m.score]) + "\n"
                    )
        for match in found:
            if match.product.slug != twin_of.get(slug) and match.score > highest_non_twin[0]:
                highest_non_twin = (match.score, f"{slug} ~ {match.product.slug}")
            if match.product.slug not in same.get(slug, ()):
                highest_other = max(highest_other, match.score)
        if slug in twin_of:
            twin = twin_of[slug]
            ranks[(slug, twin)] = slugs.index(twin) + 1 if twin in slugs else 99
            ahead = slugs[: slugs.index(twin)] if twin in slugs else None
            lenient[(slug, twin)] = (
                99 if ahead is None else 1 + sum(s not in same.get(slug, ()) for s in ahead)
            )
            twin_scores.append(next((m.score for m in found if m.product.slug == twin), 0.0))
            log(f"{slug} -> {slugs[:3]} twin rank {ranks[(slug, twin)]}")
    pairs = len(twins)
    return {
        "pairs": pairs,
        "twin_first": sum(ranks[(a, b)] == 1 and ranks[(b, a)] == 1 for a, b in twins),
        "twin_in_top3": sum(ranks[(a, b)] <= 3 and ranks[(b, a)] <= 3 for a, b in twins),
        "twin_first_directed": f"{sum(r == 1 for r in ranks.values())}/{len(ranks)}",
        "twin_in_top3_directed": f"{sum(r <= 3 for r in ranks.values())}/{len(ranks)}",
        "lowest_twin_score": round(min(twin_scores), 3),
        "twins_at_or_above_notify": sum(s >= NOTIFY_SCORE for s in twin_scores),
        "twins_at_or_above_show": sum(s >= SHOW_SCORE for s in twin_scores),
        "highest_non_twin": round(highest_non_twin[0], 3),
        "highest_non_twin_pair": highest_non_twin[1],
        "twin_first_known_duplicates": sum(
            lenient[(a, b)] == 1 and lenient[(b, a)] == 1 for a, b in twins
        ),
        "twin_in_top3_known_duplicates": sum(
            lenient[(a, b)] <= 3 and lenient[(b, a)] <= 3 for a, b in twins
        ),
        "highest_non_twin_known_duplicates": round(highest_other, 3),
    }


def trigram_baseline(twins: list[tuple[str, str]]) -> dict:
    """The old score (trigrams of name, purpose and ports only), on the same drafts."""
    probes = {p.slug: probe_of(p) for p in products_with_text()}
    twin_of = dict(twins) | {b: a for a, b in twins}
    ranks = {}
    highest = 0.0
    for slug, probe in probes.items():
        weights = probe.weights()
        scores = sorted(
            (
                (
                    sum(
                        w * trigram_similarity(getattr(probe, k), getattr(other, k))
                        for k, w in weights.items()
                    ),
                    other_slug,
                )
                for other_slug, other in probes.items()
                if other_slug != slug
            ),
            reverse=True,
        )
        order = [other for _, other in scores]
        if slug in twin_of:
            ranks[slug] = order.index(twin_of[slug]) + 1
        highest = max([highest] + [v for v, o in scores if o != twin_of.get(slug)])
    return {
        "twin_first": sum(ranks[a] == 1 and ranks[b] == 1 for a, b in twins),
        "twin_in_top3": sum(ranks[a] <= 3 and ranks[b] <= 3 for a, b in twins),
        "twin_first_directed": f"{sum(r == 1 for r in ranks.values())}/{len(ranks)}",
        "highest_non_twin": round(highest, 3),
    }


def synthetic_products(count: int, domain: Domain, *, seed: int, prefix: str) -> list[DataProduct]:
    """``count`` products whose words come from the catalogue's, in random order."""
    rng = random.Random(seed)
    vocabulary = sorted(
        {w for p in DataProduct.objects.all() for w in f"{p.name} {p.purpose}".split()}
    )
    rows = []
    for number in range(count):
        rows.append(
            DataProduct(
                slug=f"{prefix}-{number}",
                name=" ".join(rng.sample(vocabulary, 3)),
                purpose=" ".join(rng.sample(vocabulary, 14)),
                description=" ".join(rng.sample(vocabulary, 6)),
                domain=domain,
            )
        )
    return DataProduct.objects.bulk_create(rows, batch_size=1000)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--catalogue",
        type=Path,
        action="append",
        help="A catalogue YAML (repeat to merge several); default similarity_catalogue.yaml.",
    )
    args = parser.parse_args()
    args.catalogue = args.catalogue or [Path(__file__).with_name("similarity_catalogue.yaml")]
    with throwaway_database():
        t0 = time.perf_counter()
        embedder()
        load_seconds = time.perf_counter() - t0
        products, twins, duplicates = load_catalogue(args.catalogue)
        check(len(products) >= 40 and len(twins) >= 10, "catalogue too small")
        quality = rank_twins(products, twins, duplicates)
        baseline = trigram_baseline(twins)
        if os.environ.get("SIMILARITY_DUMP"):
            print(json.dumps(quality, indent=2))
            return 0

        domain = Domain.objects.create(name="Synthetic", slug="synthetic")
        extra = synthetic_products(1000, domain, seed=17, prefix="synthetic-a")
        embed_ms, computed = timed_ms(
            lambda: services.data_product_embeddings_refresh(product_ids=[p.pk for p in extra])
        )
        check(computed == 1000, f"embedded {computed}, not 1000")
        model_only_ms, _ = timed_ms(
            lambda: embedder().embed([DataProductEmbedding.objects.get(pk=extra[0].pk).text] * 1000)
        )
        synthetic_products(
            10_000 - DataProduct.objects.count(), domain, seed=18, prefix="synthetic-b"
        )
        services.data_product_embeddings_refresh()
        total = DataProduct.objects.count()
        check(total == 10_000, f"{total} products, not 10,000")
        draft = probe_of(products_with_text().get(slug=twins[0][1]))
        glossary = Glossary.load()
        similar_products(draft, limit=5, glossary=glossary)  # warm the matrix cache
        samples = [
            timed_ms(lambda: similar_products(draft, limit=5, glossary=glossary))[0]
            for _ in range(15)
        ]
        cold_glossary = [timed_ms(lambda: similar_products(draft, limit=5))[0] for _ in range(5)]
    result = {
        "catalogue": [str(path) for path in args.catalogue],
        "products": len(products),
        **quality,
        "baseline_trigram_only": baseline,
        "show_score": SHOW_SCORE,
        "notify_score": NOTIFY_SCORE,
        "score_draft_vs_10000_ms": median_ms(samples),
        "score_draft_vs_10000_with_glossary_load_ms": median_ms(cold_glossary),
        "embed_1000_s": round(embed_ms / 1000, 3),
        "embed_1000_model_only_s": round(model_only_ms / 1000, 3),
        "model_load_s": round(load_seconds, 3),
        "targets": {
            "twin_in_top3": "every pair",
            "twin_first": "≥ 80 % of pairs",
            "highest_non_twin": f"< {NOTIFY_SCORE}",
            "score_draft_vs_10000_ms": "≤ 100",
            "embed_1000_s": "≤ 10",
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
