"""The ONNX Runtime backend: an exported .onnx model (charclf.files.export), run without torch.

The file's metadata holds the model's description (charclf.files.description: labels, alphabet,
calibration, ...), checked by the same rules as a .pt checkpoint's, and the sha256 of the .pt it
was exported from (so that a stale export is never used in its place). Before first use the graph
is run once on every letter of its alphabet: a graph whose outputs do not fit its labels, or whose
embedding is shorter than its alphabet, is refused in one line.

Names run through the runner (charclf.predict.runner: grouped by exact length, in batches shared
out among `threads` workers), each worker running the one session on one thread."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np

from charclf.data.letters import Letters
from charclf.errors import CharclfError, CheckpointError
from charclf.files.description import ModelDescription, from_json, short
from charclf.predict.runner import run_names

NAME = "onnx"
SUFFIX = ".onnx"
FORMAT = 1  # the metadata's layout: charclf.format, charclf.description, charclf.source, charclf.files.card
MAX_BYTES = 1 << 30  # as for a .pt checkpoint's weights (charclf.files.archive)
# The most memory ONNX Runtime may take for a model's tensors (its weights, at most MAX_BYTES, and
# what a run needs): a graph that would allocate more fails in one line instead of taking the
# machine's memory. The shipped model needs under 20 MB.
MAX_ARENA_BYTES = 2 * MAX_BYTES
BATCH = 256  # names per run: a recurrent step's (B, gates * H) numbers stay in a core's cache


def is_onnx(path: str | os.PathLike | None) -> bool:
    return path is not None and Path(path).suffix.lower() == SUFFIX


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class OnnxBackend:
    """Folded names -> logits, from an exported graph, on `threads` CPU threads."""

    name = NAME
    precision = "float32"
    device = "cpu"

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        self.path, self.threads = Path(path), max(1, int(threads))
        self.session = _session(self.path)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.description: ModelDescription = _described(meta, self.path)
        self.source = meta.get("charclf.source", "")  # sha256 of the .pt it was exported from
        self.card: dict = _exported_card(meta)
        config = self.description.model_config
        self.letters = Letters(self.description.alphabet, config.lowercase)  # folded names -> positions
        self._check_graph(len(self.description.labels), len(self.description.alphabet))

    def logits(self, folded: list[str]) -> np.ndarray:
        """Already-folded, non-empty names -> (N, n_classes) float32 logits, in input order, by the
        runner (charclf.predict.runner): names of one length run together, without padding, so a
        name's numbers do not depend on the names beside it, to the last bit."""
        return run_names(folded, self.run, self.letters, len(self.description.labels), BATCH, self.threads)

    def run(self, letters: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(B, L) int64 positions and (B,) int64 lengths -> (B, n_classes) float32 logits: one run of
        the one session (ONNX Runtime's run() lets go of the GIL: workers share it)."""
        try:
            return self.session.run(["logits"], {"letters": letters, "lengths": lengths})[0]
        except Exception as e:  # ONNX Runtime's own types: memory refused by the arena, say
            reason = (f"it needs more than the {MAX_ARENA_BYTES:,} bytes of memory ONNX Runtime may use"
                      if "Available memory of" in str(e) else _first_line(e))
            raise CharclfError(f"ONNX Runtime could not run a batch of {letters.shape[0]:,} name(s) of "
                               f"{letters.shape[1]:,} letters: {reason}") from None

    def describe(self) -> str:
        return f"ONNX Runtime on cpu with {self.threads} thread(s) in float32"

    def _check_graph(self, n_labels: int, n_letters: int) -> None:
        """Run the graph once on one name holding every letter of the alphabet: logits of the labels'
        size, finite; else one line saying what is wrong (an ONNX Runtime error included)."""
        letters = np.arange(n_letters, dtype=np.int64)[None, :]
        try:
            logits = self.session.run(["logits"], {"letters": letters, "lengths": np.array([n_letters])})[0]
        except Exception as e:  # ONNX Runtime raises its own types (an index out of range, say)
            raise CheckpointError(f"{self.path}: its graph cannot read its own alphabet ({_first_line(e)})") from None
        if getattr(logits, "shape", None) != (1, n_labels):
            raise CheckpointError(f"{self.path}: its graph gives {getattr(logits, 'shape', '?')} scores for one name, "
                                  f"but it has {n_labels} labels")
        if not np.isfinite(logits).all():
            raise CheckpointError(f"{self.path}: its outputs are not finite numbers; its weights are broken")


def _session(path: Path):
    """An ONNX Runtime session on one thread (workers share it), or one line saying why not."""
    try:
        import onnxruntime
    except ImportError:
        from charclf.extras import install_command

        raise CheckpointError(f"reading .onnx models needs onnxruntime: {install_command('', 'onnxruntime')}") from None
    _check_file(path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # fatal only: a refused file is one line of ours, not ONNX Runtime's log
    options.add_session_config_entry("session.use_env_allocators", "1")  # the capped arena (_capped_arena)
    try:
        _capped_arena(onnxruntime)
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own types for unreadable or invalid files
        raise CheckpointError(f"{path} is not a readable ONNX model: {_first_line(e)}") from None


_ARENA: list = []  # the one capped allocator of this process, once registered


def _capped_arena(onnxruntime) -> None:
    """Register, once per process, a CPU memory arena that never grows past MAX_ARENA_BYTES and that
    the sessions use instead of their own (session.use_env_allocators): an allocation beyond it is
    an ONNX Runtime error (one line), not the machine's memory exhausted."""
    if _ARENA:
        return
    memory = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                       onnxruntime.OrtMemType.DEFAULT)
    onnxruntime.create_and_register_allocator(memory, onnxruntime.OrtArenaCfg(MAX_ARENA_BYTES, -1, -1, -1))
    _ARENA.append(memory)


def _described(meta: dict[str, str], path: Path) -> ModelDescription:
    """The model description in an .onnx file's metadata, checked (charclf.files.description)."""
    if "charclf.format" not in meta:
        older = " exported by an older charclf (no format version): export it again" if "charclf.labels" in meta else \
            ", but not one charclf exported (no charclf metadata)"
        raise CheckpointError(f"{path} is an ONNX model{older}")
    if meta["charclf.format"] != str(FORMAT):
        raise CheckpointError(f"{path}: its metadata format {meta['charclf.format'][:20]!r} is not supported (this "
                              f"charclf reads format {FORMAT}: export it again with this version)")
    try:
        return from_json(meta.get("charclf.description", ""))
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


EXPORTED_KEYS = {"format", "from", "charclf_version", "date"}  # what `charclf info` shows of it


def _exported_card(meta: dict[str, str]) -> dict:
    """How the file was exported (from which checkpoint, when, by which charclf), if it says."""
    text = meta.get("charclf.exported", "{}")
    try:
        exported = json.loads(text) if len(text) < 10_000 else {}
    except ValueError:
        return {}
    if not isinstance(exported, dict) or not EXPORTED_KEYS <= exported.keys():
        return {}  # not as charclf writes it (charclf.files.export_file): not shown
    return {k: str(v)[:200] for k, v in exported.items()}


def _check_file(path: Path) -> None:
    """A regular file of a sane size, or one line saying what it is instead (a pipe or a device
    is never read: it could block or never end)."""
    try:
        mode = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"no model file at {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    kind = ("a folder" if stat.S_ISDIR(mode.st_mode) else "a pipe" if stat.S_ISFIFO(mode.st_mode)
            else "a device" if stat.S_ISCHR(mode.st_mode) or stat.S_ISBLK(mode.st_mode)
            else "a socket" if stat.S_ISSOCK(mode.st_mode) else None)
    if kind:
        raise CheckpointError(f"{path} is {kind}, not a model file")
    if mode.st_size > MAX_BYTES:
        raise CheckpointError(f"{path} is {mode.st_size:,} bytes, more than the {MAX_BYTES:,} a charclf model "
                              "may have; refused")


def _first_line(error: Exception) -> str:
    if "Available memory of" in str(error):  # the capped arena (_capped_arena) refused an allocation
        return f"it asks for more than the {MAX_ARENA_BYTES:,} bytes of memory a charclf model may use"
    return short(Exception((str(error).strip().splitlines() or [type(error).__name__])[0]))
