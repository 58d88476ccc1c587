"""Reference retrieval: the style's reference images that best fit a brief."""

from sketchgen.references.embedding import Embedding, HashingTextEmbedding
from sketchgen.references.retriever import ImageRetriever

__all__ = ["Embedding", "HashingTextEmbedding", "ImageRetriever"]
