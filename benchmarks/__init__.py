"""The benchmarks: each module is a command run from the repository root, `python -m benchmarks.<name>`
(`--help` for its options); benchmarks/README.md lists them and their last figures."""
