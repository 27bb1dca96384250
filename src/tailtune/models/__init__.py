"""Models: the fine-tuned transformer (loading, heads, pooling, the record its config carries, its layer scopes)
and the TF-IDF family."""
