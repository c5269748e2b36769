"""The test suite (a package, so that it is found before the stray top-level ``tests`` package that the
iterative-stratification wheel installs into site-packages)."""
