"""Phase 5 (AI): embedding providers, the embedding queue, text chunks, semantic search, Dify.

Nothing here logs or returns text: ids, counts and error classes only.
"""
