"""Bulk classification on Dask: a Dask DataFrame's names classified partition by partition."""

from charclf.dask.engine import classify

__all__ = ["classify"]
