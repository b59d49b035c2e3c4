"""The config tree and what checks it: composition, option types, trusted targets."""
