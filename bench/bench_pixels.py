"""Benchmark: the pixel model nodes.

    .venv/bin/python bench/bench_pixels.py [--photos 6] [--results FILE]
    .venv/bin/python bench/bench_pixels.py --gpu [--images 16]

CPU mode (runs anywhere):
- Anonymize images/s with the shipped MTCNN detector on 2, 3.5 and 5 MP JPEG photos (the committed portrait
  pasted into the bundled demo photos, enlarged to size), through the model runtime and the node's `finish`
  (decode, detect, blur, encode, store), and detection alone.
- Model Upscale tiles/s and images/s with the tests' small random SwinIR and ESRGAN (×4) on 128×128 images
  cut into 64-pixel tiles, against one untiled pass. (Their ×4 upsampler keeps spandrel's fixed 64 features,
  so most of the work is at the output size even for these small models.)

GPU mode (needs CUDA; no weights are downloaded): SwinIR-M (the original's real-SR ×4 architecture: embed 180,
6×6 blocks, window 8) and Real-ESRGAN ×4 (RRDBNet 64×23) with random weights, upscaling 512 px images to 2048
in 512-pixel tiles (one tile per image) and in 256-pixel tiles; images/s. Speed does not depend on the
weights' values.

Prints figures; it is not a test. Results are appended to bench/RESULTS-pixels.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
log = logging.getLogger("bench")
SIZES = {"2 MP": (1728, 1152), "3.5 MP": (2304, 1536), "5 MP": (2736, 1824)}


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """Demo photos enlarged to `size`, each with the portrait fixture pasted in (one face per photo)."""
    from PIL import Image

    demo = sorted((ROOT / "beprepared_dagster" / "demo" / "images").glob("*.jpg"))
    portrait = Image.open(ROOT / "beprepared_dagster_tests" / "data" / "portrait" / "astronaut-256.jpg")
    paths = []
    for i in range(count):
        photo = Image.open(demo[i % len(demo)]).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        face = portrait.resize((size[1] // 3, size[1] // 3))
        photo.paste(face, ((i * 311) % (size[0] - face.width), (i * 173) % (size[1] - face.height)))
        paths.append(folder / f"photo_{size[0]}x{size[1]}_{i}.jpg")
        photo.save(paths[-1], quality=90)
    return paths


def bench_anonymize(count: int, tmp: Path) -> list[tuple[str, float, float, int]]:
    from beprepared_dagster import Anonymize
    from beprepared_dagster.store.objects import ObjectStore
    from beprepared_dagster_tests.pixels.runs import run_pixel_node, stored_image

    rows = []
    for label, size in SIZES.items():
        objects = ObjectStore(tmp / f"objects-{label}")
        images = [stored_image(objects, p) for p in make_photos(tmp, count, size)]
        for method in ("none", "blur"):
            started = time.perf_counter()
            outcomes = run_pixel_node(Anonymize(method=method), images, objects)
            seconds = time.perf_counter() - started
            faces = sum(len(o.set.get("face_boxes", [])) for o in outcomes)
            rows.append((f"{label} ({size[0]}x{size[1]}), method={method}", seconds, count / seconds, faces))
    return rows


def bench_upscale_cpu(tmp: Path) -> list[tuple[str, float, float, float]]:
    import torch

    from beprepared_dagster.models.backends.tiling import count_tiles, run_tiled
    from beprepared_dagster.models.backends.upscale import load_descriptor
    from beprepared_dagster_tests.pixels.runs import tiny_upscalers

    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    images = [torch.rand(1, 3, 128, 128) for _ in range(4)]
    for method, path in tiny_upscalers(tmp / "weights").items():
        model = load_descriptor(path)
        for tile, overlap in ((64, 16), (512, 32)):
            tiles = sum(count_tiles(128, 128, tile, overlap) for _ in images)
            with torch.inference_mode():
                run_tiled(model, images[0], model.scale, tile, overlap)  # warm-up
                started = time.perf_counter()
                for image in images:
                    run_tiled(model, image, model.scale, tile, overlap)
                seconds = time.perf_counter() - started
            label = f"tiny {method}, 128² → 512², tile {tile} (overlap {overlap})"
            rows.append((label, seconds, tiles / seconds, len(images) / seconds))
    return rows


def bench_upscale_gpu(count: int) -> list[tuple[str, float, float]]:
    import torch

    from beprepared_dagster.models.backends.tiling import run_tiled
    from beprepared_dagster.models.backends.upscale import import_spandrel

    spandrel = import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SwinIR import SwinIR

    nets = {
        "SwinIR-M x4 (real-SR)": SwinIR(
            upscale=4, img_size=64, window_size=8, depths=[6] * 6, embed_dim=180, num_heads=[6] * 6,
            mlp_ratio=2, upsampler="nearest+conv", resi_connection="1conv",
        ),
        "Real-ESRGAN x4 (RRDBNet 64x23)": ESRGAN(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=4),
    }  # fmt: skip
    rows = []
    for name, net in nets.items():
        model = spandrel.ModelLoader().load_from_state_dict(net.state_dict()).to("cuda").eval()
        for dtype in (torch.float32, torch.float16):
            model.to(dtype)
            images = [torch.rand(1, 3, 512, 512, device="cuda", dtype=dtype) for _ in range(count)]
            for tile in (512, 256):
                with torch.inference_mode():
                    run_tiled(model, images[0], 4, tile, 32)
                    torch.cuda.synchronize()
                    started = time.perf_counter()
                    for image in images:
                        run_tiled(model, image, 4, tile, 32)
                    torch.cuda.synchronize()
                    seconds = time.perf_counter() - started
                label = f"{name}, {str(dtype).split('.')[-1]}, 512² → 2048², tile {tile}"
                rows.append((label, seconds, count / seconds))
    return rows


def header() -> str:
    import torch

    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return f"## {when} — {platform.node()}\n\n{device}, torch {torch.__version__}, {os.cpu_count()} cores\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=6, help="photos per size for Anonymize")
    parser.add_argument("--gpu", action="store_true", help="SwinIR-M / Real-ESRGAN sized upscaling on CUDA")
    parser.add_argument("--images", type=int, default=16, help="images per GPU measurement")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-pixels.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = [header()]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.gpu:
            lines += ["| upscaling (random weights) | seconds | images/s |", "|---|---|---|"]
            lines += [f"| {n} | {s:.2f} | {r:.2f} |" for n, s, r in bench_upscale_gpu(args.images)]
        else:
            lines += [
                f"Anonymize, MTCNN (shipped weights), {args.photos} JPEG photos per size, one face each",
                "",
            ]
            lines += ["| photos | seconds | images/s | faces found |", "|---|---|---|---|"]
            lines += [
                f"| {n} | {s:.2f} | {r:.2f} | {f} |" for n, s, r, f in bench_anonymize(args.photos, tmp)
            ]
            lines += ["", "Model Upscale, tiny random weights (the tests' models), 4 images", ""]
            lines += ["| model | seconds | tiles/s | images/s |", "|---|---|---|---|"]
            lines += [f"| {n} | {s:.2f} | {t:.1f} | {r:.2f} |" for n, s, t, r in bench_upscale_cpu(tmp)]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.results.exists():
        args.results.write_text(
            "# Pixel node benchmark results\n\nAppended by `bench/bench_pixels.py`; newest last.\n"
        )
    with args.results.open("a") as handle:
        handle.write("\n" + text)


if __name__ == "__main__":
    main()
