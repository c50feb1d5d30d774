// Every test here runs real Kestrel nodes; on two cores they must not compete with each other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
