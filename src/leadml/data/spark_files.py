"""Spark sessions and lead files read on Spark, for the engines that run there (scoring,
:mod:`leadml.scoring.spark`; training's reading, :mod:`leadml.data.spark_history`). PySpark
is imported inside the functions: it is optional."""

from __future__ import annotations

import os
import sys

from leadml.errors import ConfigError, LeadDataError

CORRUPT = "_corrupt_record"  # a CSV row Spark could not split, kept whole


def session(master: str | None = None, conf: dict[str, str] | None = None, *,
            name: str = "leadml"):
    """A Spark session whose workers run this Python; ``local[*]`` unless told otherwise.
    ``conf``: extra Spark settings (``spark.driver.memory``, ...), applied before start."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(name)
    # Under spark-submit (or with a session already running) the master is set already.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ or SparkSession.getActiveSession()
    if master or not submitted:
        master = master or "local[*]"
        builder = builder.master(master)
        if master.startswith("local"):  # one machine: few shuffle partitions, not 200
            builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count()
                                                                             or 2)))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return (builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())


#: Python's name of an encoding -> the name Spark's CSV reader takes (it takes no other).
SPARK_CHARSETS = {"utf-8": "utf-8", "iso8859-1": "iso-8859-1", "ascii": "us-ascii",
                  "utf-16": "utf-16", "utf-16-be": "utf-16be", "utf-16-le": "utf-16le",
                  "utf-32": "utf-32"}


def spark_charset(encoding: str) -> str:
    """The name Spark reads ``encoding`` by, or a ConfigError naming what it reads.

    >>> spark_charset("latin-1")
    'iso-8859-1'
    """
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}") from None
    if name not in SPARK_CHARSETS:
        raise ConfigError(
            f"the Spark engine's CSV reader cannot read {encoding!r}: it reads "
            f"{', '.join(sorted(set(SPARK_CHARSETS.values())))}. Use the local engine "
            "(no --engine spark), or convert the file to UTF-8 first")
    return SPARK_CHARSETS[name]


def read_leads(spark, source: str, *, parquet: bool, delimiter: str = ",",
               encoding: str = "utf-8"):
    """Every row of a CSV or Parquet file (or folder of parts), CSV values as text (a row
    Spark cannot split is kept whole in :data:`CORRUPT`); and whether it was a CSV."""
    from pyspark.sql.types import StringType, StructField, StructType

    if parquet:
        return spark.read.parquet(source), False
    options = {"header": "true", "sep": delimiter,
               "encoding": spark_charset(encoding),
               "multiLine": "true", "escape": '"', "mode": "PERMISSIVE",
               "nullValue": "\0never\0", "emptyValue": ""}
    header = spark.read.options(**options).csv(source).columns
    if not header:
        raise LeadDataError(f"'{source}' has no header row")
    schema = StructType([StructField(c, StringType()) for c in header]
                        + [StructField(CORRUPT, StringType())])
    frame = spark.read.options(**options, columnNameOfCorruptRecord=CORRUPT).schema(schema) \
        .csv(source)
    return frame, True
