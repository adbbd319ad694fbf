"""The demo page under load and abuse: 16 concurrent generate requests all complete; oversized,
non-audio and hostile uploads, out-of-range numbers and very long text are refused with a
message, and the server keeps serving; it binds to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import socket
import struct

import numpy as np
import pytest
import soundfile

pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'audiodiff[demo]'")

from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.reliability.helpers import record  # noqa: E402
from tests.test_demo import LIMITS, checkpoint, client, generate, server, value  # noqa: E402,F401  (fixtures)


def still_serving(client) -> bool:
    return value(generate(client, batch_size=1, steps=2, duration=0.25)[0]) is not None


def test_sixteen_concurrent_generate_requests_all_complete(server, client):  # noqa: F811
    jobs = [
        client.submit(
            model="run",
            label=["low", "high"][seed % 2],
            text="a tone" if seed % 3 else "",
            negative_label="",
            negative_text="",
            pitch=60.0,
            duration=0.25,
            sampler=["ddim", "euler", "heun", "dpmpp_2m"][seed % 4],
            steps=2,
            guidance=2.0,
            seed=seed,
            batch_size=1 + seed % 2,
            api_name="/generate",
        )
        for seed in range(16)
    ]
    results = [job.result(timeout=300) for job in jobs]
    frames = [soundfile.info(value(outputs[0])).frames for outputs in results]
    assert len(frames) == 16 and all(f > 0 for f in frames)
    store = server[0].audiodiff_store
    assert store.load_count == len(store._pipes)  # every model loaded once
    record("demo_abuse", case="16 concurrent generate requests", trials=16, completed=len(frames))


def test_the_server_binds_to_localhost_by_default(server):  # noqa: F811
    host = server[1].split("//")[1].split(":")[0]
    assert host == "127.0.0.1"
    port = int(server[1].rsplit(":", 1)[1].strip("/"))
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in addresses:  # not reachable on the machine's other addresses
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex((address, port)) != 0, f"the demo answers on {address}"
    record("demo_abuse", case="bind address", trials=1, bound="127.0.0.1", other_interfaces_refused=len(addresses))


def _riff(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _huge_header(tmp_path):
    buffer = tmp_path / "ok.wav"
    soundfile.write(buffer, np.zeros(1600), 16000)
    data = bytearray(buffer.read_bytes())
    data[24:28] = struct.pack("<I", 700_000)  # sample rate: 1600 frames now last 2 ms... and resample hard
    return _riff(tmp_path, "odd_rate.wav", bytes(data))


UPLOADS = {
    "not audio": (lambda tmp: _riff(tmp, "page.wav", b"<html>" * 100), "not a readable audio file"),
    "random bytes": (
        lambda tmp: _riff(tmp, "noise.flac", np.random.default_rng(0).bytes(5000)),
        "not a readable audio file",
    ),
    "empty": (lambda tmp: _riff(tmp, "empty.wav", b""), "empty.wav"),
    "too long": (lambda tmp: _long(tmp), "over the 2 s limit"),
    "NaN samples": (lambda tmp: _nan(tmp), "NaN or Inf"),
}


def _long(tmp_path):
    soundfile.write(tmp_path / "long.wav", np.zeros(16000 * 5), 16000)
    return tmp_path / "long.wav"


def _nan(tmp_path):
    audio = np.zeros(1600, dtype=np.float32)
    audio[3] = np.nan
    soundfile.write(tmp_path / "nan.wav", audio, 16000, subtype="FLOAT")
    return tmp_path / "nan.wav"


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_a_bad_upload_is_refused_with_a_message_and_the_server_stays_up(client, tmp_path, case):  # noqa: F811
    make, message = UPLOADS[case]
    for endpoint, args, conditions in (("/vary", (0.5, 2, 1), dict(label="low", pitch=70.0)), ("/vocode", (), {})):
        with pytest.raises(AppError, match=message):
            client.predict("run", handle_file(str(make(tmp_path))), *args, **conditions, api_name=endpoint)
    record("demo_abuse", case=f"upload: {case}", trials=2, refused_with_message=True)


ARGUMENTS = {
    "steps over the limit": (dict(steps=10_000), "maximum value 8"),
    "negative steps": (dict(steps=-5), "-5 is less than minimum value 1"),
    "batch over the limit": (dict(batch_size=500), "maximum value 2"),
    "duration over the limit": (dict(duration=3600.0), "1"),
    "huge guidance": (dict(guidance=1e30), "greater than maximum value 10"),
    "pitch far below the model's trained range": (
        dict(pitch=10.0),
        r"pitch=10 is far outside the trained range|less than minimum",
    ),
    "10,000-character prompt": (dict(text="loud " * 2000, label=""), "200 characters"),
    "unknown sampler": (dict(sampler="rm -rf"), "not in the list of choices: .*'ddim'"),
    "unknown model": (dict(model="../../etc"), r"not in the list of choices: .*'run'"),
}


@pytest.mark.parametrize("case", sorted(ARGUMENTS))
def test_out_of_range_arguments_are_refused_with_a_message(client, case):  # noqa: F811
    arguments, message = ARGUMENTS[case]
    with pytest.raises(AppError, match=message):
        generate(client, **arguments)
    record("demo_abuse", case=f"generate: {case}", trials=1, refused_with_message=True)


def test_the_server_still_serves_after_all_of_the_above(server, client):  # noqa: F811  (runs last in this file)
    assert still_serving(client)
    store = server[0].audiodiff_store
    assert store.load_count == len(store._pipes)  # every model loaded once
    record("demo_abuse", case="a generate request after every abuse above", trials=1, completed=True)
