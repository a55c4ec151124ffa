"""Data sets kept as files: image folders and shards indexed, decoded and streamed per image."""
