"""fastText's supervised architecture: the mean of a sentence's word vectors and of its hashed word
n-gram vectors (Joulin et al. 2017, "Bag of Tricks for Efficient Text Classification").

Each n-gram of consecutive word ids (bigrams by default) is hashed into one of `buckets` rows of an
``nn.EmbeddingBag`` table of the word vectors' width, so words and n-grams average in one space
and the head (TextClassifier's linear layer) reads that mean. The hash is fastText's
(``h = h * 116049371 + id``) over the run's vocabulary ids, computed in int64 torch arithmetic:
the same text gives the same rows in every process (never Python's salted ``hash()``), and
n-grams around words the vocabulary lacks hash through ``<unk>``'s id like any other word's.
fastText's optional character n-grams (off in its supervised mode by default) need the word strings,
which an encoder does not see; they are not offered.
"""

from __future__ import annotations

import torch
from torch import nn

from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.models.encoders.checks import check_choice, check_positive
from textclass.models.encoders.pooling import token_bag

# fastText's n-gram hash multiplier (Dictionary::addWordNgrams)
HASH_MULTIPLIER = 116049371
# keeps every intermediate of the hash below 2**63: bucket * HASH_MULTIPLIER + word id cannot overflow int64
MAX_BUCKETS = 2**31
NGRAM_INITS = ("uniform", "zeros")
NGRAM_PAD = 0  # the table's row for "no n-gram here" (padding): excluded from the sum, never trained


def ngram_buckets(input_ids: torch.Tensor, mask: torch.Tensor, max_n: int, buckets: int) -> torch.Tensor:
    """The bucket of every word n-gram (n = 2 .. max_n) of each row, [B, T * (max_n - 1)] int64 in
    [0, buckets), or -1 where the n-gram is not there (it would touch padding or run past the end).

    Row b's n-gram of length n starting at position t is ids[t], ..., ids[t + n - 1], hashed as
    h = ids[t]; h = (h * HASH_MULTIPLIER + ids[t + j]) mod buckets for j = 1 .. n - 1. Taking the
    remainder at each step keeps the arithmetic exact in int64, and for a power-of-two `buckets` it
    equals fastText's hash computed in wrapping uint64 and reduced once. Columns are n-major
    (all bigrams, then all trigrams, ...), one per start position.
    """
    ids, real = input_ids.long(), mask.bool()
    batch, width = ids.shape
    # padded by max_n - 1 columns of non-words, so every start position has a window for every n
    ids = torch.cat([ids, ids.new_zeros(batch, max_n - 1)], dim=1)
    real = torch.cat([real, real.new_zeros(batch, max_n - 1)], dim=1)
    hashes, present, columns = ids[:, :width] % buckets, real[:, :width], []
    for n in range(2, max_n + 1):
        hashes = (hashes * HASH_MULTIPLIER + ids[:, n - 1 : n - 1 + width]) % buckets
        present = present & real[:, n - 1 : n - 1 + width]
        columns.append(hashes.masked_fill(~present, -1))
    return torch.cat(columns, dim=1) if columns else ids.new_zeros(batch, 0)


class FastTextEncoder(nn.Module):
    """Mean of the word vectors and the hashed word n-gram vectors of the real tokens.

    word_ngrams: the longest n-gram (fastText's -wordNgrams; 1 = words only, the bag of embeddings).
    buckets: rows of the n-gram table (fastText's -bucket). With dense gradients Adam reads and
    writes every row at every step, so the default is sized for that on CPU (colliding n-grams
    share a row, which costs little: most are rare); with `sparse` and optimizer=sgd or adagrad a
    step touches only the batch's rows, and more buckets cost memory and checkpoint size only.
    sparse: sparse gradients for the n-gram table (needs optimizer=sgd or adagrad; it is never weight-decayed).
    ngram_init: ``uniform`` draws the rows from U(-1/dim, 1/dim), as fastText does; ``zeros``
    starts every n-gram at the origin, so the initial mean is the (shrunk) word vectors alone.
    """

    def __init__(
        self,
        embedding: nn.Module,
        word_ngrams: int = 2,
        buckets: int = 2**16,
        sparse: bool = False,
        ngram_init: str = "uniform",
    ):
        super().__init__()
        check_positive(word_ngrams=word_ngrams, buckets=buckets)
        check_choice("ngram_init", ngram_init, NGRAM_INITS)
        if buckets > MAX_BUCKETS:
            raise ConfigError(f"model.encoder.buckets={buckets} is more than the hash allows ({MAX_BUCKETS}); choose fewer")
        self.embedding = embedding
        self.word_ngrams = word_ngrams
        self.buckets = buckets
        self.output_dim = embedding.embedding_dim
        self.ngrams: nn.EmbeddingBag | None = None
        if word_ngrams > 1:
            # row 0 is the padding row; bucket k is row k + 1
            self.ngrams = nn.EmbeddingBag(buckets + 1, self.output_dim, mode="sum", sparse=sparse, padding_idx=NGRAM_PAD)
            with torch.no_grad():
                if ngram_init == "uniform":
                    self.ngrams.weight.uniform_(-1.0 / self.output_dim, 1.0 / self.output_dim)
                else:
                    self.ngrams.weight.zero_()
                self.ngrams.weight[NGRAM_PAD].zero_()

    def ngram_rows(self, batch: Batch) -> torch.Tensor:
        """Rows of the n-gram table for each example, [B, K]; NGRAM_PAD where there is no n-gram."""
        return ngram_buckets(batch.input_ids, batch.attention_mask, self.word_ngrams, self.buckets) + 1

    def forward(self, batch: Batch) -> torch.Tensor:
        mask = batch.attention_mask.bool()
        if self.training and isinstance(self.embedding, nn.Embedding):
            # Evaluation keeps the vectors themselves: explanations read them through the embedding layer.
            total = token_bag(self.embedding, batch.input_ids, mask, "sum")
        else:
            vectors = self.embedding(batch.input_ids)
            total = (vectors * mask.unsqueeze(-1).to(vectors.dtype)).sum(1)
        count = mask.sum(1)
        if self.ngrams is not None:
            rows = self.ngram_rows(batch)
            total = total + self.ngrams(rows)
            count = count + (rows != NGRAM_PAD).sum(1)
        # an example without tokens has no words and no n-grams: zeros, as the bag of embeddings gives
        return total / count.clamp(min=1).unsqueeze(-1).to(total.dtype)
