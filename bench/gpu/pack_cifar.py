"""Packs the 50,000 CIFAR-10 training images into one JPEG mosaic (250 × 200 tiles of 32×32,
aligned to JPEG's 8×8 blocks so no image bleeds into another; quality 95, no chroma subsampling)
so the training set is small to copy to a GPU machine: 34.7 MB, 44.8 dB PSNR against the
stored pixels (those are themselves mostly JPEG-recovered, ../shared/data/cifar10/README.md).
Usage: python pack_cifar.py CIFAR_DIR OUT_DIR   (needs numpy and Pillow)
"""
import shutil
import sys

import numpy as np
from PIL import Image


def main():
    src, out = sys.argv[1], sys.argv[2]
    d = np.concatenate([np.fromfile(f"{src}/data_batch_{i}.bin", dtype=np.uint8).reshape(-1, 3073) for i in range(1, 6)])
    x = d[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    rows, cols = 200, 250
    mosaic = x.reshape(rows, cols, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(rows * 32, cols * 32, 3)
    Image.fromarray(mosaic).save(f"{out}/train_q95.jpg", quality=95, subsampling=0)
    back = np.asarray(Image.open(f"{out}/train_q95.jpg")).astype(float)
    psnr = 10 * np.log10(255**2 / ((back - mosaic) ** 2).mean())
    d[:, 0].tofile(f"{out}/train_labels.u8")
    shutil.copyfile(f"{src}/test_lossless.bin", f"{out}/test_lossless.bin")
    print(f"{out}/train_q95.jpg: PSNR {psnr:.1f} dB against the stored pixels")


if __name__ == "__main__":
    main()
