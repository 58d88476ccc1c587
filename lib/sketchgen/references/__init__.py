"""Reference retrieval: the style's reference images that best fit a brief."""

from sketchgen.references.embedding import Embedding, HashingTextEmbedding
from sketchgen.references.retriever import TOP_K, ImageRetriever

# The size of every stored reference vector (user styles): Gemini's are cut to it, the hashing
# embedding is made at it, and the Firestore vector index is declared with it (Terraform;
# tests/deploy checks the two agree).
EMBEDDING_DIMENSIONS = 768

__all__ = ["EMBEDDING_DIMENSIONS", "TOP_K", "Embedding", "HashingTextEmbedding", "ImageRetriever"]
