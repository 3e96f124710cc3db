"""Reference pixel values for tests/pydicom_corpus.rs where DCMTK has no
decoder (JPEG 2000, HTJ2K): pydicom's pixel_array, written as little-endian
samples, interleaved, one file per input.

usage: corpus_reference.py IN OUT [IN OUT ...]
Prints one line per pair: "ok IN" or "skip IN: reason".
"""
import sys

import numpy as np
import pydicom


def main(args):
    for src, dst in zip(args[0::2], args[1::2]):
        try:
            ds = pydicom.dcmread(src)
            # as decoded, without a colour conversion pydicom would add
            arr = ds.pixel_array
            bits = int(ds.BitsAllocated)
            dtype = {8: "u1", 16: "<u2", 32: "<u4"}[bits]
            signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
            if signed:
                dtype = dtype.replace("u", "i")
            with open(dst, "wb") as out:
                out.write(np.ascontiguousarray(arr).astype(dtype).tobytes())
            print("ok", src)
        except Exception as e:  # noqa: BLE001 - a reason for the test to print
            print("skip", src + ":", type(e).__name__, str(e).replace("\n", " ")[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
