"""GGUF: a safe reader, the converter from the original checkpoint, the verifier."""
