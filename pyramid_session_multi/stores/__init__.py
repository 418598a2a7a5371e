"""Where sessions are kept: connecting to the stores namespaces and add-on features use.

:mod:`.redis` connects to one Redis server, a Sentinel-watched master, or a
Redis Cluster, from settings or from code.
"""
