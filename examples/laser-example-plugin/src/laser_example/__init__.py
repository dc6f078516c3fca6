"""A worked example of a third-party LASER plugin package; see README.md."""
