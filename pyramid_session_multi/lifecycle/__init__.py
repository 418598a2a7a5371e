"""What happens to each namespace in a request, from first access to the response.

- :mod:`.loading`: a namespace's load, a chain of small steps (discriminator,
  factory, then the checks that may reject what the client sent);
- :mod:`.ending`: the end of the request, decided for every namespace that
  needs one, then applied namespace by namespace with failures contained;
- :mod:`.claiming`: which callbacks queued on the request are a session
  library's, taken into the namespace's end.
"""
