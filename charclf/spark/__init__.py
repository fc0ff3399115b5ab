"""Bulk classification on Spark: a DataFrame's names classified on the executors (mapInPandas)."""

from charclf.spark.engine import classify

__all__ = ["classify"]
