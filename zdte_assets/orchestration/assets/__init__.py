"""The assets of one ticker's graph, one module per stage; each loads inputs, calls the domain and records the result."""
