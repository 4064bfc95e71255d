"""``executor.kind: ray``: every step runs on a Ray cluster over sharded step outputs.

* :mod:`.cluster` joins or starts the cluster and runs one function per shard (or per bucket) with
  Ray Data, returning the original exception of a failed task;
* :mod:`.shards` plans input shards, writes shard files atomically and adds up per-shard counts;
* :mod:`.ingest` reads the sources as shards (by file, and by record ranges of big JSONL files) and
  gives every record the id the local ingest gives it;
* :mod:`.batch` runs a batch step over every shard; :mod:`.book` writes a global step's decisions,
  scores and quarantine into the shards;
* :mod:`.shuffle` is a hash-partitioned groupby through files on the run directory;
* :mod:`.dedup` runs ``dedup.exact`` and ``dedup.minhash`` distributed, :mod:`.embed` the embed steps
  on an actor pool, :mod:`.semantic` ``dedup.semantic``, :mod:`.diversity` ``score.diversity`` and
  :mod:`.maps` ``score.map``; :mod:`.vectors` reads each record's embedding by row number in tasks.

The runner reaches all of it through :class:`curate.pipeline.ray_executor.RayExecutor`.
"""
