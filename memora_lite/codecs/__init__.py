"""Column codecs: numpy columns to bytes and back, one named encoding per column chunk.

Token rows (``ARRAY`` of ints, such as ``input_ids``) use the tokens1 block
codec, whose kernels are compiled (``BACKEND == "cython"``) unless
``MEMORA_LITE_BACKEND=numpy`` selects the pure-numpy twin. Every other column
kind has a plain, UTF-8 or msgpack encoding, zstd-compressed when that is
smaller. Byte layouts: ``docs/format.md``.

>>> import numpy as np
>>> block = encode_token_lists([[101, 2054, 102, 0, 0], [101, 102, 0, 0, 0]])
>>> out = np.empty((2, 5), dtype=np.int32)
>>> decode_tokens_dense(block, out)
>>> out[1].tolist()
[101, 102, 0, 0, 0]
>>> name, data = encode_column(np.array(["a", None], dtype=object), "strings")
>>> name, decode_column(name, data, 2, "strings", np.dtype(object)).tolist()
('utf8', ['a', ''])
"""

from memora_lite.codecs.backend import (
    BACKEND,
    TokenBlock,
    decode_tokens,
    decode_tokens_dense,
    decode_tokens_lists,
    encode_token_lists,
    encode_tokens,
    flatten_int_lists,
    narrow_ints,
    open_block,
)
from memora_lite.codecs.column import decode_column, encode_column, open_column

__all__ = [
    "BACKEND",
    "TokenBlock",
    "decode_column",
    "decode_tokens",
    "decode_tokens_dense",
    "decode_tokens_lists",
    "encode_column",
    "encode_token_lists",
    "encode_tokens",
    "flatten_int_lists",
    "narrow_ints",
    "open_block",
    "open_column",
]
