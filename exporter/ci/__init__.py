"""What CI reads: JUnit XML (parity, compare) and the pull-request summary of ``compare``, rendered from records."""
