"""The nightly leadml jobs as an Airflow DAG: score tonight's export, then monitor weekly.

Copy to Airflow's dags folder and set the Variable ``leadml_home`` (the project folder with its
.venv). Each task runs the leadml command; Airflow fails the task on a non-zero exit code,
and the exit code says why (README: 3 bad data, 4 too many rejects, 5 no model, 6 cannot
write, 7 a monitor alert, 8 tracking server down), so a retry is only worth it for 6 and 8.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

LEADML = "{{ var.value.leadml_home }}/.venv/bin/leadml"

with DAG(
    dag_id="leadml_nightly",
    start_date=datetime(2026, 12, 1),
    schedule="15 2 * * *",
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["leadml"],
) as dag:
    score = BashOperator(
        task_id="score",
        bash_command=(
            f"cd {{{{ var.value.leadml_home }}}} && {LEADML} score "
            "/data/crm/nightly/{{ ds }}.csv --output /data/scored/{{ ds }}.csv "
            "--rules pipelines/configs/bant.yaml --scored-at {{ ts }}"
        ),
    )
    monitor = BashOperator(
        task_id="monitor",
        bash_command=(
            f"{LEADML} monitor --scored /data/scored --outcomes /data/crm/outcomes.csv "
            "--converted-at-column converted_at --by week --output /data/monitoring"
        ),
        retries=0,  # exit 7 is an alert, not a failure to retry
    )
    score >> monitor
