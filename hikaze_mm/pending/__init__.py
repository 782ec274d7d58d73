"""Pending models and their promotion into the library (Stage 2).

Every scan and the legacy import create pending models; ``Promoter`` hashes one and
applies it (with a conflict strategy), ``MigrationManager`` runs the background worker
that promotes them all, resumably.
"""
