"""What a method caches, through the plugin author's door: ``ctx.asset(namespace, key, build)``
and the digests its keys are made of.

    from ddr.method.assets import content_key, file_sha256, safe_torch_load, save_tensors, tensor_sha256

* :class:`Assets`: the cache's asset entries (``ctx.assets``): ``get``, ``build``, ``path``,
  ``entries`` (locked, atomic, content-keyed; :mod:`ddr.store.assets`);
* :func:`content_key`: the sha256 of a JSON-able mapping (canonical JSON), an asset's key;
* :func:`file_sha256`, :func:`tensor_sha256`: digests of a file and of tensors' bytes (dtype and
  shape included), for keys that depend on data;
* :func:`save_tensors`: writes a safetensors file into an asset folder; a full disk is an
  ``OSError`` that ``ctx.asset`` turns into one clear message (never a ``SafetensorError``
  traceback);
* :func:`safe_torch_load`: reads a ``torch.save`` file a user gives (an official checkpoint or
  buffer): tensors and plain containers only, never code; its errors are one-line
  ``ArtifactError`` s (refused objects named, truncated files called so).
"""

from ddr.store.assets import Assets, content_key
from ddr.store.formats import safe_torch_load
from ddr.store.hashing import sha256_file as file_sha256
from ddr.store.hashing import tensor_sha256
from ddr.store.writable import save_tensors

__all__ = ["Assets", "content_key", "file_sha256", "safe_torch_load", "save_tensors", "tensor_sha256"]
