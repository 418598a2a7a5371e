"""Parallel requests of one client: merge on save, and nothing ended comes back.

See :doc:`/narr/parallel` for what each store guarantees.
"""
