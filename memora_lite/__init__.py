"""memora_lite: the Memora ``nosql`` interface, in-process, on local files."""
