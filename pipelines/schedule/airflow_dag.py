"""The leadml jobs as two Airflow DAGs: score each night's export, monitor every Monday.

The same jobs as ``crontab`` beside this file, at the same times (UTC), on the same files.
Copy to Airflow's dags folder and set the Variable ``leadml_home`` (the project folder with its
.venv). Each task runs the leadml command; Airflow fails the task on a non-zero exit code,
and the exit code says why (README: 3 bad data, 4 too many rejects, 5 no model, 6 cannot
write, 7 a monitor alert, 8 tracking server down), so a retry is only worth it for 6 and 8.

Data intervals (Airflow 2's cron timetable): the run that starts at 02:15 on 2026-12-08
covers the interval 2026-12-07 02:15 to 2026-12-08 02:15, and its ``ds`` is the interval's
start, 2026-12-07, a day behind the crontab's ``date +%F``. The score task therefore names
the file by the interval's end (``data_interval_end | ds``: 2026-12-08.csv, the export that
landed that night, as cron scores it) and pins ``--scored-at`` to the same end, so a rerun
or a backfill writes the bytes the first run wrote, and a lead created after the interval
is rejected rather than scored as if it existed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

LEADML = "{{ var.value.leadml_home }}/.venv/bin/leadml"
TONIGHT = "{{ data_interval_end | ds }}"  # the date cron's `date +%F` gives at 02:15
RETRIES = {"retries": 1, "retry_delay": timedelta(minutes=10)}

with DAG(
    dag_id="leadml_nightly",
    start_date=datetime(2026, 12, 1),
    schedule="15 2 * * *",  # 02:15 UTC every night, as the crontab
    catchup=False,
    default_args=RETRIES,
    tags=["leadml"],
) as dag:
    score = BashOperator(
        task_id="score",
        bash_command=(
            f"cd {{{{ var.value.leadml_home }}}} && {LEADML} score "
            f"/data/crm/nightly/{TONIGHT}.csv --output /data/scored/{TONIGHT}.csv "
            "--rules pipelines/configs/bant.yaml --scored-at {{ data_interval_end | ts }}"
        ),
    )

with DAG(
    dag_id="leadml_weekly_monitor",
    start_date=datetime(2026, 12, 1),
    schedule="0 6 * * 1",  # 06:00 UTC every Monday, after that night's scoring
    catchup=False,
    tags=["leadml"],
) as weekly:
    monitor = BashOperator(
        task_id="monitor",
        bash_command=(
            f"{LEADML} monitor --scored /data/scored --outcomes /data/crm/outcomes.csv "
            "--converted-at-column converted_at --by week --output /data/monitoring"
        ),
        retries=0,  # exit 7 is an alert, not a failure to retry
    )
