// Every test here starts real processes that listen on loopback: run them one at a time (2 cores).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
