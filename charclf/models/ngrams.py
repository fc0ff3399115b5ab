"""The classical baseline (`charclf train --model ngram`), a model of its own: character n-grams as
a linear model: hashed, TF-IDF weighted, L2-normalised 1-5-grams of the
lower-cased name with a boundary mark at each end (scikit-learn's `char_wb` features), a weight
table of n_classes logits per hash bucket, fitted as a multinomial logistic regression.

Everything is vectorised over the (B, T) letter-position tensor of data.index_batch: no Python
work per name. The hash is arithmetic on letter codes (never Python's salted `hash()`), so the
same name lands in the same buckets in every process.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn

from charclf.data.letters import Letters
from charclf.data.tensors import index_batch

_PRIME = 2_147_483_647  # 2^31 - 1: keys stay below it, so key * multiplier fits in int64
_MULTIPLIER = 1_000_003  # mixes a key before it is cut to n_buckets
_PAD, _BOUNDARY = 0, 1  # letter codes; real letters are 2, 3, ...


def letter_codes(alphabet: str) -> torch.Tensor:
    """(len(alphabet),) int64: alphabet position -> code of its lower-cased letter (space: boundary).

    Upper- and lower-case letters share a code, as in scikit-learn's lowercase=True; a space
    inside a name separates words the way char_wb's padding does."""
    symbols = sorted({c.lower() for c in alphabet} - {" "})
    code = {s: i + 2 for i, s in enumerate(symbols)}
    return torch.tensor([_BOUNDARY if c == " " else code[c.lower()] for c in alphabet], dtype=torch.long)


class NgramTable(nn.Module):
    """(B, T) letter positions + (B,) lengths -> (B, n_classes) logits of the linear n-gram model."""

    def __init__(self, alphabet_size: int, n_classes: int, n_buckets: int, max_n: int = 5):
        super().__init__()
        self.n_buckets, self.max_n = n_buckets, max_n
        # Filled by fit() from the training names; buffers so that they travel in the checkpoint.
        self.register_buffer("codes", torch.zeros(alphabet_size, dtype=torch.long))
        self.register_buffer("idf", torch.zeros(n_buckets))  # 0 = never seen in training: no weight
        self.weight = nn.Parameter(torch.zeros(n_buckets, n_classes))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        # Most buckets are never seen in training (idf 0, weight 0): a checkpoint keeps only the
        # seen ones ("rows"), which makes it a few MB whatever the number of buckets.
        self._register_state_dict_hook(_keep_seen_rows)
        self._register_load_state_dict_pre_hook(self._restore_all_rows)

    def _restore_all_rows(self, state_dict, prefix, *args):
        if prefix + "rows" not in state_dict:
            return  # a full table (as in memory); load_state_dict checks its shape
        rows = state_dict.pop(prefix + "rows").long()
        if len(rows) and not (0 <= int(rows.min()) and int(rows.max()) < self.n_buckets):
            raise RuntimeError(f"n-gram rows outside the {self.n_buckets} buckets")
        for key, full in (("weight", self.weight), ("idf", self.idf)):
            if prefix + key in state_dict:
                seen = state_dict[prefix + key]
                if seen.shape[0] != len(rows) or seen.shape[1:] != full.shape[1:]:
                    raise RuntimeError(f"size mismatch for {prefix}{key}: {tuple(seen.shape)}")
                state_dict[prefix + key] = torch.zeros_like(full).index_copy_(0, rows.to(full.device),
                                                                                seen.to(full))

    def buckets(self, padded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (rows, buckets): one entry per n-gram occurrence (n = 1..max_n), int64, flat."""
        buckets, valid = self.occurrences(padded, lengths)
        rows, columns = valid.nonzero(as_tuple=True)
        return rows, buckets[rows, columns]

    def occurrences(self, letters: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) letter positions and (B,) lengths -> ((B, M) buckets of every window, (B, M) whether
        the window is one of the name's n-grams: inside boundary..boundary, not in the padding)."""
        B, T = letters.shape
        positions = torch.arange(T + 2, device=letters.device)
        lengths = lengths.to(letters.device)
        # (B, T + 2) codes: boundary, the letters, boundary (right after each name's end).
        seq = torch.cat([torch.full((B, 1), _BOUNDARY, dtype=torch.long, device=letters.device), self.codes[letters],
                         torch.full((B, 1), _BOUNDARY, dtype=torch.long, device=letters.device)], dim=1)
        seq[torch.arange(B, device=letters.device), lengths + 1] = _BOUNDARY
        buckets, valid = [], []
        for n, key in self._keys(seq):
            buckets.append(key)
            valid.append(positions[None, : key.shape[1]] + n <= lengths[:, None] + 2)
        return torch.cat(buckets, dim=1), torch.cat(valid, dim=1)

    def _keys(self, seq: torch.Tensor):
        """(B, W) codes -> (n, (B, W + 1 - n) buckets of the n-grams starting at each position) for n = 1..max_n."""
        base = int(self.codes.max()) + 1 if self.codes.numel() else 2
        key = torch.zeros_like(seq)
        for n in range(1, self.max_n + 1):
            width = seq.shape[1] + 1 - n  # windows [i, i + n)
            if width <= 0:
                break
            # Horner step: key of the n-gram at i = key of the (n-1)-gram at i, times base, plus letter i+n-1.
            key = (key[:, :width] * base + seq[:, n - 1 : n - 1 + width]) % _PRIME
            # n keeps 'ab' apart from ' ab'; the multiplier mixes the key before it is cut to n_buckets.
            yield n, ((key * (self.max_n + 1) + n) * _MULTIPLIER % _PRIME) % self.n_buckets

    def features(self, padded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """TF-IDF, L2-normalised: (rows, buckets, values) with one entry per distinct (name, bucket)."""
        rows, buckets = self.buckets(padded, lengths)
        pairs, counts = torch.unique(rows * self.n_buckets + buckets, return_counts=True)  # sorted by row
        rows, buckets = pairs // self.n_buckets, pairs % self.n_buckets
        values = counts.to(self.idf.dtype) * self.idf[buckets]
        norms = torch.zeros(len(lengths), dtype=values.dtype, device=values.device).index_add_(0, rows, values * values)
        return rows, buckets, values / norms.sqrt().clamp_min(1e-12)[rows]

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) letter positions, 0-padded, and (B,) lengths -> (B, n_classes) logits, without sorting
        out distinct n-grams first: the logits are linear in the counts, so every occurrence adds
        idf * weight (an n-gram in the padding adds nothing)."""
        buckets, valid = self.occurrences(letters, lengths)  # (B, M) each
        idf = torch.where(valid, self.idf[buckets], 0.0)
        summed = nn.functional.embedding_bag(buckets, self.weight, per_sample_weights=idf, mode="sum")
        # The L2 norm needs the counts: sum over distinct buckets of (count * idf)^2. Sorted, the k-th
        # occurrence (k = 0, 1, ...) of a bucket adds (2k + 1) * idf^2, and 1 + 3 + ... + (2c - 1) = c^2.
        # Padding windows sort first, as bucket -1, with idf 0: they start no run of a real bucket.
        ordered = torch.where(valid, buckets, -1).sort(dim=1).values
        positions = torch.arange(ordered.shape[1], device=letters.device).expand_as(ordered)
        starts = torch.ones_like(ordered, dtype=torch.bool)
        starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        run_start = torch.where(starts, positions, 0).cummax(dim=1).values
        idf = torch.where(ordered >= 0, self.idf[ordered.clamp_min(0)], 0.0)
        norms = ((2 * (positions - run_start) + 1) * idf * idf).sum(1).sqrt().clamp_min(1e-12)  # (B,)
        return self.bias + summed / norms[:, None]

    @torch.no_grad()
    def fit(self, padded: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, codes: torch.Tensor,
            c: float = 30.0, max_iter: int = 300, class_weight: torch.Tensor | None = None,
            history_size: int = 10, min_df: int = 1, name_weight: torch.Tensor | None = None) -> int:
        """Multinomial logistic regression on the training names by L-BFGS (at most max_iter iterations):
        minimise sum of losses + ||weight||^2 / (2c) (scikit-learn's LogisticRegression(C=c)).
        Returns the number of L-BFGS iterations."""
        self.codes.copy_(codes)
        rows, buckets = self.buckets(padded, lengths)
        # Document frequency: in how many training names each bucket occurs (smoothed idf).
        seen = torch.unique(rows * self.n_buckets + buckets) % self.n_buckets
        df = torch.bincount(seen, minlength=self.n_buckets).to(self.idf.dtype)
        n = len(lengths)
        self.idf.copy_(torch.where(df >= min_df, torch.log((1 + n) / (1 + df)) + 1, torch.zeros_like(df)))
        rows, buckets, values = self.features(padded, lengths)
        rows, buckets, values = rows[values > 0], buckets[values > 0], values[values > 0]
        # Only the buckets seen in training get weights (the others keep 0): fit on those columns.
        used, columns = torch.unique(buckets, return_inverse=True)
        shape = (n, len(used))
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            x = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, shape,
                                        check_invariants=False).coalesce().to_sparse_csr()
            x_t = torch.sparse_coo_tensor(torch.stack([columns, rows]), values, shape[::-1],
                                          check_invariants=False).coalesce().to_sparse_csr()
        onehot = nn.functional.one_hot(targets, self.weight.shape[1]).to(values.dtype)  # (n, C)
        device = values.device
        sample_weight = torch.ones(n, device=device) if class_weight is None else class_weight[targets]  # (n,)
        if name_weight is not None:  # extra names weigh less (charclf.data.extra)
            sample_weight = sample_weight * name_weight
        weight = torch.zeros(len(used), self.weight.shape[1], device=device)
        bias = torch.zeros(self.weight.shape[1], device=device)
        weight.grad, bias.grad = torch.zeros_like(weight), torch.zeros_like(bias)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, history_size=history_size,
                                      tolerance_grad=1e-6, tolerance_change=1e-10, line_search_fn="strong_wolfe")

        def closure():
            # Loss and gradient by hand (sparse x, no autograd), divided by n for better-sized numbers.
            logits = torch.sparse.mm(x, weight) + bias  # (n, C)
            log_p = torch.log_softmax(logits, dim=1)
            loss = -(sample_weight * (log_p * onehot).sum(1)).sum() + (weight * weight).sum() / (2 * c)
            error = (log_p.exp() - onehot) * sample_weight[:, None]  # d loss / d logits
            weight.grad.copy_((torch.sparse.mm(x_t, error) + weight / c) / n)
            bias.grad.copy_(error.sum(0) / n)
            return loss / n

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # vectors of ~10^6 floats: threads wait on each other more than they help
        try:
            optimizer.step(closure)
        finally:
            torch.set_num_threads(threads)
        self.weight.zero_()
        self.weight[used] = weight
        self.bias.copy_(bias)
        return optimizer.state[weight]["n_iter"]


class NgramClassifier(nn.Module):
    """The n-gram baseline with the same interface as model.NameClassifier (index, and forward(letters,
    lengths) -> logits), so that evaluation and prediction treat both alike. It is fitted in
    one go (fit), not by epochs."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.table = NgramTable(config.n_letters, config.n_classes, config.ngram_buckets, config.ngram_max_n)

    def index(self, names: Sequence[str], alphabet: str) -> tuple[torch.Tensor, torch.Tensor]:
        return index_batch(names, alphabet)  # letter codes already ignore case

    def letters(self, alphabet: str) -> Letters:
        """How this model turns folded names into letter positions (numpy), for prediction."""
        return Letters(alphabet)

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) letter positions and (B,) lengths -> (B, n_classes) logits."""
        device = self.table.codes.device
        return self.table(letters.to(device), lengths.to(device))

    def count_parameters(self) -> int:
        """Only the rows of buckets seen in training count (the others stay 0 and are not stored)."""
        return int((self.table.idf > 0).sum()) * self.table.weight.shape[1] + self.table.bias.numel()

    def fit(self, names: list[str], targets: list[int], alphabet: str, train_config,
            class_weight: torch.Tensor | None = None, name_weights: list[float] | None = None) -> int:
        """Fit the logistic regression on the training names (each weighing its `name_weights`, default 1);
        returns its L-BFGS iterations."""
        device = self.table.codes.device
        padded, lengths = index_batch(names, alphabet)
        return self.table.fit(padded.to(device), lengths.to(device), torch.tensor(targets, device=device),
                              letter_codes(alphabet).to(device), c=train_config.ngram_c,
                              max_iter=train_config.ngram_iterations, min_df=train_config.ngram_min_df,
                              class_weight=None if class_weight is None else class_weight.to(device),
                              name_weight=None if name_weights is None else torch.tensor(name_weights, device=device))


def _keep_seen_rows(module: NgramTable, state_dict, prefix, local_metadata):
    """state_dict hook: store the weight and idf rows of seen buckets, and which rows they are."""
    if module.idf.is_meta:  # shapes only (charclf.models.build.weight_shapes): every row could be seen
        state_dict[prefix + "rows"] = torch.empty(module.n_buckets, dtype=torch.int32, device="meta")
        return state_dict
    rows = module.idf.nonzero().squeeze(1)
    state_dict[prefix + "rows"] = rows.int()
    state_dict[prefix + "weight"] = state_dict[prefix + "weight"][rows]
    state_dict[prefix + "idf"] = state_dict[prefix + "idf"][rows]
    return state_dict
