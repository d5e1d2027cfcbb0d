"""Metric.observations_changed_at: when observations were last written, the key of the
evaluation's cached fit with the newest period (issue 11, speed). Left empty for
existing metrics: their first evaluation after this fits them afresh."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("outcomes", "0006_i13_report_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="metric",
            name="observations_changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
