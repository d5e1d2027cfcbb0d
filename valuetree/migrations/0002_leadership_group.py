"""The organisation-wide Leadership role: a group holding `read_all_trees`."""

from __future__ import annotations

from django.db import migrations

LEADERSHIP_GROUP = "Leadership"


def create_leadership_group(apps, schema_editor):
    # Permissions are normally created after all migrations; ours is needed now.
    ContentType = apps.get_model("contenttypes", "ContentType")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(app_label="valuetree", model="valuetree")
    permission, _ = Permission.objects.get_or_create(
        codename="read_all_trees",
        content_type=content_type,
        defaults={"name": "Can read every value tree (organisation-wide leadership role)"},
    )
    group, _ = Group.objects.get_or_create(name=LEADERSHIP_GROUP)
    group.permissions.add(permission)


def remove_leadership_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=LEADERSHIP_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("valuetree", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_leadership_group, remove_leadership_group)]
