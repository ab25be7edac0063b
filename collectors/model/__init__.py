"""Engine-neutral model knowledge: architecture registry, decoder layers, pooling."""
