"""asv benchmark suites of fastlr (see benchmarks/README.md)."""
