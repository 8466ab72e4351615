"""Seeds: derivation of per-role seeds from one run seed, and explicit random generators.

Every random draw in ddr comes from a generator made here from a seed derived with
:func:`derive_seed` (docs/protocol.md §2): ``numpy.random.SeedSequence(seed,
spawn_key=(stable_hash(role, index),))``. Derived seeds depend only on their inputs, never on
time, process or Python's ``hash()`` randomisation.

torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import TYPE_CHECKING, Any

import numpy as np

from ddr.errors import DdrError
from ddr.store.hashing import canonical_json

if TYPE_CHECKING:  # pragma: no cover
    import torch

SEED_LIMIT = 2**63
"""Seeds are integers in ``[0, SEED_LIMIT)``: they fit a signed 64-bit int (torch, SQLite)."""

CUBLAS_WORKSPACE_CONFIG = ":4096:8"
"""The cuBLAS workspace setting that makes cuBLAS matmuls deterministic on CUDA >= 10.2."""


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as an int if it is an integer in ``[0, 2**63)`` (bool excluded), else DdrError."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise DdrError(
            f"{what} must be a non-negative integer, got {type(seed).__name__} {seed!r}"
        )
    value = int(seed)
    if not 0 <= value < SEED_LIMIT:
        raise DdrError(f"{what} must be an integer in [0, 2**63); got {value}")
    return value


def stable_hash(*parts: Any) -> int:
    """A 32-bit unsigned int identifying ``parts``, stable across processes and platforms.

    SHA-256 of the canonical JSON of ``parts`` (so ``"1"`` and ``1`` differ), first 4 bytes
    big-endian. Never Python's ``hash()``, which is randomised per process for strings.
    """
    text = canonical_json(list(parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def derive_seed(seed: int, role: str, index: int = 0) -> int:
    """The seed of one consumer of randomness, in ``[0, 2**63)``.

    Args:
        seed: the run seed.
        role: what the randomness is for, e.g. ``"student/syn_hard"``, ``"random_subset"``.
        index: which one of that role, e.g. the student index.

    ``SeedSequence(seed, spawn_key=(stable_hash(role, index),))`` generates two 32-bit words;
    the result is ``(word0 << 31) | (word1 >> 1)``: 63 bits.
    """
    seed = check_seed(seed)
    if not isinstance(role, str) or not role:
        raise DdrError(f"role must be a non-empty string naming the consumer, got {role!r}")
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) or index < 0:
        raise DdrError(f"index must be a non-negative integer, got {index!r}")
    sequence = np.random.SeedSequence(seed, spawn_key=(stable_hash(role, int(index)),))
    high, low = (int(word) for word in sequence.generate_state(2, dtype=np.uint32))
    return (high << 31) | (low >> 1)


def numpy_generator(seed: int) -> np.random.Generator:
    """A numpy ``Generator`` (PCG64) seeded with ``seed``."""
    return np.random.default_rng(check_seed(seed))


def torch_generator(seed: int, device: "str | torch.device" = "cpu") -> "torch.Generator":
    """A ``torch.Generator`` on ``device`` seeded with ``seed``.

    Draws from it on a CUDA device differ from CPU draws with the same seed (different engines).
    """
    import torch

    seed = check_seed(seed)
    try:
        generator = torch.Generator(device=device)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise DdrError(
            f"cannot create a random generator on device {str(device)!r}: {exc}; "
            "use 'cpu' or an available accelerator"
        ) from exc
    generator.manual_seed(seed)
    return generator


def seed_everything(seed: int) -> None:
    """Seed the global generators of ``random``, numpy (legacy API) and torch (CPU and CUDA).

    ddr itself draws from explicit generators; this only tames third-party code that uses the
    global ones.
    """
    import torch

    seed = check_seed(seed)
    random.seed(seed)
    # The legacy numpy seed must be < 2**32; seeding with both 32-bit words keeps all 63 bits.
    np.random.seed([seed & 0xFFFFFFFF, seed >> 32])
    torch.manual_seed(seed)  # also seeds every CUDA device (lazily if CUDA is not initialised)


def set_deterministic(flag: bool) -> dict[str, Any]:
    """Switch torch's deterministic mode on (``True``) or off and return the resulting settings.

    On: ``torch.use_deterministic_algorithms(True, warn_only=True)`` (ops without a
    deterministic implementation warn instead of failing), cuDNN deterministic and not
    benchmarking, and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless the environment already sets it
    (it only takes effect if set before CUDA initialises cuBLAS: call this early). Off: the two
    determinism switches are cleared; cuDNN benchmarking and the environment are left as they are.

    Returns:
        ``{"deterministic", "use_deterministic_algorithms", "warn_only", "cudnn_deterministic",
        "cudnn_benchmark", "cublas_workspace_config"}`` as in effect after the call, for run
        records.
    """
    import torch

    if not isinstance(flag, bool):
        raise DdrError(f"set_deterministic expects True or False, got {flag!r}")
    if flag:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    return {
        "deterministic": flag,
        "use_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
