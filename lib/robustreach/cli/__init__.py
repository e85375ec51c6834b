"""The `robustreach` command line: thin wrappers over the library's modules."""
