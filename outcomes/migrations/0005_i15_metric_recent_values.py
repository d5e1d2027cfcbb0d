"""Metric.recent_values: the newest values of a metric, for the tree page's sparklines
(issue 15), filled in for the metrics that already have observations."""

from django.db import migrations, models

RECENT_VALUES = 12


def fill(apps, schema_editor):
    Metric = apps.get_model("outcomes", "Metric")
    Observation = apps.get_model("outcomes", "Observation")
    for metric_id in Metric.objects.values_list("id", flat=True).iterator():
        newest = (
            Observation.objects.filter(metric_id=metric_id)
            .order_by("-period_start")
            .values_list("value", flat=True)[:RECENT_VALUES]
        )
        Metric.objects.filter(pk=metric_id).update(recent_values=list(newest)[::-1])


class Migration(migrations.Migration):
    dependencies = [
        ("outcomes", "0005_i14_pull_run_samples_skipped"),
    ]

    operations = [
        migrations.AddField(
            model_name="metric",
            name="recent_values",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
