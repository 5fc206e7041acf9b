from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0007_item_identity'),
    ]

    operations = [
        migrations.AddField(
            model_name='xcom',
            name='display',
            field=models.JSONField(null=True),
        ),
    ]
