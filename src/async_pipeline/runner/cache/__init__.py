"""The task cache: keys, input hashing, stores (file, memory, redis) and the run-time engine."""
