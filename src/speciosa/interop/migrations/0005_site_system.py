"""Every site gets a unique, stable MRN identifier system (issue 14): sites in id order take
slugify(name) when it is free (the system their exports used so far) and ``<slug>-<id>``
when an earlier site already has it ("St. Mary's" and "St Marys")."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def assign(apps, schema_editor):
    from django.utils.text import slugify

    site_model = apps.get_model("clinic", "Site")
    system_model = apps.get_model("interop", "SiteSystem")
    taken = set(system_model.objects.values_list("slug", flat=True))
    for site in site_model.objects.order_by("pk"):
        if system_model.objects.filter(site_id=site.pk).exists():
            continue
        base = slugify(site.name)[:100] or "site"
        slug, n = base, 1
        if slug in taken:
            slug = f"{base}-{site.pk}"
        while slug in taken:
            n += 1
            slug = f"{base}-{site.pk}-{n}"
        taken.add(slug)
        system_model.objects.create(site_id=site.pk, slug=slug)


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0001_initial'),
        ('interop', '0004_smart_on_fhir'),
    ]

    operations = [
        migrations.CreateModel(
            name='SiteSystem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('slug', models.SlugField(max_length=120, unique=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('site', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='fhir_system', to='clinic.site')),
            ],
            options={
                'verbose_name': 'site MRN identifier system',
            },
        ),
        migrations.RunPython(assign, migrations.RunPython.noop),
    ]
