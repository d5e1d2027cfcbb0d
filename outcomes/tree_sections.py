"""Registers measures as a section of the tree document (see valuetree/sections.py)."""

from __future__ import annotations

from valuetree import sections


def register() -> None:
    from outcomes.evaluation import measures_evaluate_restored
    from outcomes.selectors import (
        measure_history,
        measure_states,
        measures_by_node,
        node_statuses,
        tree_view_states,
    )
    from outcomes.serializers import MeasureItemSerializer
    from outcomes.services import measure_create_at, measures_create_for_new_nodes

    sections.register(
        sections.NodeSection(
            key="measures",
            fetch=measures_by_node,
            item_serializer=MeasureItemSerializer,
            create=measure_create_at,
            create_many=measures_create_for_new_nodes,
            history=measure_history,
            history_model="measure",
            # A metric id means nothing in another installation.
            export_exclude=frozenset({"id", "metric_id", "created_at", "updated_at"}),
            restored=measures_evaluate_restored,
        )
    )
    sections.register_node_statuses(node_statuses)

    from outcomes.reviews import interchange as review_interchange
    from outcomes.reviews.views import node_panel

    review_interchange.register()

    sections.register_node_panel(node_panel)
    sections.register_measure_states(measure_states)
    sections.register_tree_view_states(tree_view_states)
