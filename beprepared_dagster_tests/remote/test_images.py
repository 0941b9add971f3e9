"""Images as the API nodes send them: own bytes in their real format when they fit, otherwise upright,
downscaled JPEG; bad bytes fail as BadImage. Uses the committed fixture images."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from beprepared_dagster import GPT4oCaption
from beprepared_dagster.errors import BadImage
from beprepared_dagster.remote.images import data_url
from beprepared_dagster_tests.conftest import DATA


def decode(url: str) -> tuple[str, bytes]:
    head, payload = url.split(",", 1)
    return head, base64.b64decode(payload)


@pytest.mark.parametrize(
    "name, mime, as_is",
    [
        ("64x48.jpg", "image/jpeg", True),
        ("rgba-32x32.png", "image/png", True),
        ("webp-rgb.webp", "image/webp", True),
        ("exif-rotated-60x40.jpg", "image/jpeg", False),  # turned upright: servers may ignore EXIF
        ("cmyk-40x30.jpg", "image/jpeg", False),
        ("anim-2frames.gif", "image/jpeg", False),
        ("bitmap.bmp", "image/jpeg", False),
        ("tiff-rgb.tiff", "image/jpeg", False),
    ],
)
def test_an_image_goes_in_its_own_format_when_it_can(name, mime, as_is):
    data = (DATA / name).read_bytes()
    head, sent = decode(data_url(data, 1024))
    assert head == f"data:{mime};base64"
    assert (sent == data) is as_is
    if not as_is:
        with Image.open(io.BytesIO(sent)) as image:
            assert image.mode == "RGB" and image.format == "JPEG"


def test_an_exif_rotated_photo_is_sent_upright():
    _, sent = decode(data_url((DATA / "exif-rotated-60x40.jpg").read_bytes(), 1024))
    with Image.open(DATA / "exif-rotated-60x40.jpg") as original:
        stored = original.size
    with Image.open(io.BytesIO(sent)) as image:
        assert image.size == stored[::-1]


def test_a_large_image_is_downscaled_to_max_edge_and_none_sends_it_whole():
    data = (DATA / "640x480.jpg").read_bytes()
    with Image.open(io.BytesIO(decode(data_url(data, 256))[1])) as image:
        assert image.size == (256, 192)
    assert decode(data_url(data, None))[1] == data


@pytest.mark.parametrize("name", ["zero-bytes.jpg", "text-file.jpg", "truncated.jpg"])
def test_bad_bytes_are_a_bad_image(name):
    with pytest.raises(BadImage):
        data_url((DATA / name).read_bytes(), 16)


def test_the_request_carries_detail_system_and_generation_parameters():
    node = GPT4oCaption(
        detail="low", system="You caption photos.", max_tokens=77, temperature=0.2, prompt="Go."
    )
    body = node.request((DATA / "64x48.jpg").read_bytes())
    assert body["messages"][0] == {"role": "system", "content": "You caption photos."}
    text, picture = body["messages"][1]["content"]
    assert text == {"type": "text", "text": "Go."} and picture["image_url"]["detail"] == "low"
    assert (body["max_tokens"], body["temperature"], body["model"]) == (77, 0.2, "gpt-4o-2024-08-06")
