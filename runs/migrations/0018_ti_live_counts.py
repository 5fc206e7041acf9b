from django.db import migrations, models


# Live counts (runs.models.TaskCount): each statement on runs_taskinstance appends, per (run, task,
# state) it changed, the difference it made: +1 for each new row, -1 for each old one, summed from
# its transition tables (shared with the foreign-key trigger of 0017 on insert), rows whose sums
# are all zero left out. So an UPDATE that keeps every row's state and duration (a heartbeat, a
# rendered field) appends nothing, and no statement reads or locks a row another one writes:
# concurrent workers never wait on each other. runs.summaries sums and compacts them.
_DELTA = """
    INSERT INTO runs_taskcount (dag_run_id, task_id, state, n, placeholders, timed, duration)
    SELECT dag_run_id, task_id, state, sum(n), sum(p), sum(t), coalesce(sum(d), 0) FROM ({rows}) AS changes
    GROUP BY dag_run_id, task_id, state
    HAVING sum(n) <> 0 OR sum(p) <> 0 OR sum(t) <> 0 OR coalesce(sum(d), 0) <> 0;
"""
_SIDE = """SELECT dag_run_id, task_id, state, {sign} AS n, {sign} * (map_index < 0)::int AS p,
       {sign} * (map_index >= 0 AND duration IS NOT NULL)::int AS t,
       {sign} * CASE WHEN map_index >= 0 THEN duration::numeric(40, 20) END AS d FROM {table}"""
COUNT_TRIGGERS = f"""
CREATE FUNCTION runs_ti_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_DELTA.format(rows=_SIDE.format(sign=1, table="new_rows"))}
    RETURN NULL;
END $$;

CREATE FUNCTION runs_ti_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_DELTA.format(rows=_SIDE.format(sign=-1, table="old_rows"))}
    RETURN NULL;
END $$;

CREATE FUNCTION runs_ti_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_DELTA.format(rows=_SIDE.format(sign=-1, table="old_rows") + " UNION ALL " + _SIDE.format(sign=1, table="new_rows"))}
    RETURN NULL;
END $$;

-- A deleted run's counts go with it (its instances were deleted first: migration 0017).
CREATE FUNCTION runs_dag_run_drop_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM runs_taskcount WHERE dag_run_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER ti_count_insert AFTER INSERT ON runs_taskinstance
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION runs_ti_count_insert();
CREATE TRIGGER ti_count_update AFTER UPDATE ON runs_taskinstance
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION runs_ti_count_update();
CREATE TRIGGER ti_count_delete AFTER DELETE ON runs_taskinstance
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION runs_ti_count_delete();
CREATE TRIGGER dag_run_drop_counts AFTER DELETE ON runs_dagrun
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION runs_dag_run_drop_counts();

-- The runs there are: their counts, one row per (run, task, state). CREATE TRIGGER above locked the
-- table against writes until this migration commits, so no change falls between the two.
{_DELTA.format(rows=_SIDE.format(sign=1, table="runs_taskinstance"))}
"""
DROP_COUNT_TRIGGERS = """
DROP TRIGGER dag_run_drop_counts ON runs_dagrun;
DROP TRIGGER ti_count_delete ON runs_taskinstance;
DROP TRIGGER ti_count_update ON runs_taskinstance;
DROP TRIGGER ti_count_insert ON runs_taskinstance;
DROP FUNCTION runs_dag_run_drop_counts();
DROP FUNCTION runs_ti_count_update();
DROP FUNCTION runs_ti_count_delete();
DROP FUNCTION runs_ti_count_insert();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0017_ti_statement_fk_and_page_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='TaskCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('dag_run_id', models.BigIntegerField()),
                ('task_id', models.CharField(max_length=250)),
                ('state', models.CharField(max_length=20)),
                ('n', models.BigIntegerField()),
                ('placeholders', models.BigIntegerField()),
                ('timed', models.BigIntegerField()),
                ('duration', models.DecimalField(decimal_places=20, max_digits=40)),
            ],
            options={
                'indexes': [models.Index(fields=['dag_run_id'], name='taskcount_run')],
            },
        ),
        migrations.AddIndex(
            model_name='taskinstance',
            index=models.Index(condition=models.Q(('end_date__isnull', False)), fields=['dag_run', 'task_id', 'end_date'], name='ti_run_task_end'),
        ),
        migrations.RunSQL(COUNT_TRIGGERS, DROP_COUNT_TRIGGERS),
    ]
