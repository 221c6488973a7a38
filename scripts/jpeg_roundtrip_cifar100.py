#!/usr/bin/env python3
"""CIFAR-100 (binary format) with every image passed once through JPEG and back.

Why: the CIFAR-10 of ../shared/data is JPEG quality 75 with 4:2:0 chroma subsampling
(libjpeg's default tables; checked against cjpeg's output), and no lossless copy of it is
at hand. CIFAR-100 is there lossless, so training on it and on this script's copy with the
same recipe measures what such a re-encoding costs in test accuracy (docs/results.md).

  scripts/jpeg_roundtrip_cifar100.py --in ../shared/data/cifar-100-binary --out DIR [--quality 75]

Writes DIR/train.bin and DIR/test.bin in the input's record layout (coarse label, fine
label, 1024 R + 1024 G + 1024 B) and copies the label-name files. Prints, for each file, the
PSNR of the re-encoded pixels against the input's over all of its records: how much the
encoding changes, in the unit image-compression papers quote. Needs cjpeg and djpeg
(Debian: libjpeg-turbo-progs) with their defaults besides the quality: libjpeg's standard
tables and 4:2:0 chroma subsampling, as in the CIFAR-10 files.
"""
import argparse
import math
import os
import shutil
import subprocess
import sys

RECORD = 2 + 3 * 32 * 32
PLANE = 32 * 32


def roundtrip(pixels: bytes, quality: int) -> bytes:
    """pixels: 3 planes of 32x32 (R, G, B). Returns the same layout after JPEG and back."""
    interleaved = bytearray(3 * PLANE)
    for c in range(3):
        interleaved[c::3] = pixels[c * PLANE:(c + 1) * PLANE]
    ppm = b"P6\n32 32\n255\n" + bytes(interleaved)
    jpeg = subprocess.run(["cjpeg", "-quality", str(quality)], input=ppm, capture_output=True, check=True).stdout
    decoded = subprocess.run(["djpeg", "-pnm"], input=jpeg, capture_output=True, check=True).stdout
    header = b"P6\n32 32\n255\n"
    if not decoded.startswith(header) or len(decoded) != len(header) + 3 * PLANE:
        sys.exit("jpeg_roundtrip: djpeg returned an unexpected image header")
    body = decoded[len(header):]
    return b"".join(body[c::3] for c in range(3))


def squared_error(a: bytes, b: bytes) -> int:
    """Sum over bytes of (a - b)^2; a and b have the same length."""
    return sum((x - y) * (x - y) for x, y in zip(a, b))


def psnr_db(squared_error_sum: int, count: int) -> float:
    """Peak signal-to-noise ratio of 8-bit samples: 10 log10(255^2 / mean squared error)."""
    if squared_error_sum == 0:
        return math.inf
    return 10 * math.log10(255 * 255 * count / squared_error_sum)


def convert(src: str, dst: str, quality: int) -> None:
    data = open(src, "rb").read()
    if len(data) % RECORD:
        sys.exit(f"jpeg_roundtrip: {src} is {len(data)} bytes, not a whole number of {RECORD}-byte records")
    out = bytearray()
    count = len(data) // RECORD
    error_sum = 0
    for i in range(count):
        record = data[i * RECORD:(i + 1) * RECORD]
        pixels = roundtrip(record[2:], quality)
        error_sum += squared_error(record[2:], pixels)
        out += record[:2] + pixels
        if (i + 1) % 5000 == 0:
            print(f"{os.path.basename(src)}: {i + 1}/{count}", flush=True)
    psnr = psnr_db(error_sum, count * (RECORD - 2))
    print(f"{os.path.basename(src)}: PSNR {psnr:.2f} dB against the input over all {count} images, "
          f"RMS error {math.sqrt(error_sum / (count * (RECORD - 2))):.2f} of 255", flush=True)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, dst)  # a killed run leaves no half-written file under the final name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="src", required=True, help="CIFAR-100 binary folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality (default 75)")
    args = parser.parse_args()
    if not 1 <= args.quality <= 100:
        sys.exit(f"jpeg_roundtrip: --quality must be in 1..100, got {args.quality}")
    for tool in ("cjpeg", "djpeg"):
        if shutil.which(tool) is None:
            sys.exit(f"jpeg_roundtrip: {tool} not found (Debian: apt-get install libjpeg-turbo-progs)")
    for name in ("train.bin", "test.bin"):
        if not os.path.isfile(os.path.join(args.src, name)):
            sys.exit(f"jpeg_roundtrip: {os.path.join(args.src, name)} not found (--in: a CIFAR-100 binary folder)")
    os.makedirs(args.out, exist_ok=True)
    for name in ("train.bin", "test.bin"):
        convert(os.path.join(args.src, name), os.path.join(args.out, name), args.quality)
    for name in ("fine_label_names.txt", "coarse_label_names.txt"):
        path = os.path.join(args.src, name)
        if os.path.exists(path):
            shutil.copy(path, args.out)


if __name__ == "__main__":
    main()
