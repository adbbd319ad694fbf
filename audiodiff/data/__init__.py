"""Training data: find items (`layouts`, `manifest`), check files (`checks`), turn them into
crops (`features`), serve them (`dataset`, `shards`), and build data sets offline (`builders`).

The entry points are `audiodiff.data.dataset.scan_items` and `make_dataset`; see each module.
"""
