"""Pure transformation helpers: code maps and value patterns used by the transform SQL."""
