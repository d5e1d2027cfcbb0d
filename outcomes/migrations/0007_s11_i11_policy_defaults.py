"""Verdict policy defaults from the recalibrated backtest (issue 11): on track from a
50 % chance of reaching the target, at risk from 35 %.

Policies still at the old defaults (60 % / 40 %, set by 0005_i11_verdict_reasons a
session ago and never chosen by anyone else) move to the new ones; a policy whose
owner changed either figure keeps it.
"""

import django.core.validators
from django.db import migrations, models

OLD = (0.6, 0.4)
NEW = (0.5, 0.35)


def _move(apps, frm, to):
    VerdictPolicy = apps.get_model("outcomes", "VerdictPolicy")
    VerdictPolicy.objects.filter(on_track_probability=frm[0], at_risk_probability=frm[1]).update(
        on_track_probability=to[0], at_risk_probability=to[1]
    )


def forwards(apps, schema_editor):
    _move(apps, OLD, NEW)


def backwards(apps, schema_editor):
    _move(apps, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("outcomes", "0006_i13_report_schedules"),
    ]

    operations = [
        migrations.AlterField(
            model_name="verdictpolicy",
            name="on_track_probability",
            field=models.FloatField(
                default=0.5,
                help_text="A forecast chance of reaching the target at least this high is on track.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="verdictpolicy",
            name="at_risk_probability",
            field=models.FloatField(
                default=0.35,
                help_text="Below the on-track chance but at least this high is at risk; lower is "
                "off track.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
