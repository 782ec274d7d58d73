"""The PostgreSQL backend: the library's stores on a PostgreSQL server.

Chosen by a ``postgresql://`` URL (``HIKAZE_DB_URL``, ``--db-url``) through
``open_library``; it needs the ``postgres`` extra (psycopg 3, psycopg-pool), imported only
then. ``library.PostgresLibrary`` implements ``interfaces.Library`` with the shared
stores, which take its ``dialect``'s SQL where the backends differ.
"""
