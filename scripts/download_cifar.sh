#!/usr/bin/env bash
# Downloads the official CIFAR-10 and CIFAR-100 binary archives, checks their published MD5
# sums and unpacks them.
#
#   scripts/download_cifar.sh [DEST] [cifar10|cifar100|all]     (defaults: ./datasets all)
#
# Result: DEST/cifar-10-batches-bin/ (data_batch_1..5.bin, test_batch.bin, batches.meta.txt)
# and DEST/cifar-100-binary/ (train.bin, test.bin, fine/coarse_label_names.txt), ready for
# open_dataset("cifar10", DEST/cifar-10-batches-bin, ...) and
# open_dataset("cifar100", DEST/cifar-100-binary, ...). An archive already present with the
# right checksum is not downloaded again. Needs curl or wget, md5sum and tar. The tests never
# use this script: they write their own small files.
set -euo pipefail

dest="${1:-datasets}"
which="${2:-all}"
base_url="${CIFAR_BASE_URL:-https://www.cs.toronto.edu/~kriz}"  # overridable for a mirror

case "$which" in
  cifar10 | cifar100 | all) ;;
  *) echo "usage: $0 [DEST] [cifar10|cifar100|all]" >&2; exit 2 ;;
esac
mkdir -p "$dest"

fetch() {  # url file
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$2.part" "$1"
  elif command -v wget >/dev/null; then
    wget -O "$2.part" "$1"
  else
    echo "download_cifar: needs curl or wget" >&2
    exit 1
  fi
  mv "$2.part" "$2"
}

md5_ok() {  # file md5
  [ -f "$1" ] && [ "$(md5sum "$1" | cut -d' ' -f1)" = "$2" ]
}

get() {  # archive md5 unpacked-folder
  local archive="$dest/$1"
  if md5_ok "$archive" "$2"; then
    echo "$1: already downloaded"
  else
    echo "$1: downloading from $base_url"
    fetch "$base_url/$1" "$archive"
    if ! md5_ok "$archive" "$2"; then
      echo "download_cifar: $archive has MD5 $(md5sum "$archive" | cut -d' ' -f1), expected $2" >&2
      exit 1
    fi
  fi
  tar xzf "$archive" -C "$dest"
  echo "$1: MD5 ok, unpacked into $dest/$3"
}

if [ "$which" != cifar100 ]; then
  get cifar-10-binary.tar.gz c32a1d4ab5d03f1284b67883e8d87530 cifar-10-batches-bin
fi
if [ "$which" != cifar10 ]; then
  get cifar-100-binary.tar.gz 03b5dce01913d631647c71ecec9e9cb8 cifar-100-binary
fi
