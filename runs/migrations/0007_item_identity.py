from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0006_hot_path_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='taskinstance',
            name='item_identity',
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='taskinstance',
            name='item_change',
            field=models.CharField(blank=True, choices=[('unchanged', 'Unchanged'), ('new', 'New'), ('changed', 'Changed')], max_length=10, null=True),
        ),
        migrations.AddField(
            model_name='taskinstance',
            name='keep_unchanged',
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name='taskmap',
            name='identities',
            field=models.JSONField(blank=True, null=True),
        ),
    ]
