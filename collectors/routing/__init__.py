"""What happens to a scored request: the routing gate, self-consistency, the score record."""
