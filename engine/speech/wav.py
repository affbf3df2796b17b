"""WAV files in and out, and resampling, with numpy only.

One RIFF chunk reader handles every encoding we accept (8/16/24/32-bit PCM, 32/64-bit IEEE float, and
WAVE_FORMAT_EXTENSIBLE wrapping either), so files from any recorder or editor read the same way; it also
tolerates the oversized chunk lengths that programs streaming to a pipe (espeak-ng --stdout) write.
Everything we write is 16-bit PCM mono, which every player understands.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
import wave
from math import gcd
from pathlib import Path

import numpy as np

from engine.settings import ConfigError

PCM, IEEE_FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
SINC_ZEROS = 24      # zero crossings of the resampling kernel on each side: long enough for a sharp cut-off
ROLLOFF = 0.94       # cut-off as a fraction of the lower Nyquist frequency, so the transition band sits below it
KAISER_BETA = 8.0    # window shape: about 80 dB stop-band attenuation
_TABLE_MAX = 4096    # up to this many kernel phases are tabulated once; beyond, taps are computed per sample


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] (channels averaged) and the sampling rate of a WAV file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"Could not read {path} ({exc.strerror or exc}); check that the file exists and "
                          f"is readable.") from None
    return decode_wav(data, str(path))


def decode_wav(data: bytes, name: str = "the audio") -> tuple[np.ndarray, int]:
    """read_wav on bytes already in memory; `name` is what error messages call them."""
    if not data:
        raise ConfigError(f"{name} is empty (0 bytes); record or export it again.")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ConfigError(f"{name} is not a WAV file (no RIFF/WAVE header); convert it to WAV.")
    fmt, samples = None, None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]   # a streamed header may claim more than the file holds
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            samples = body
        pos += 8 + size + (size & 1)          # chunks are padded to even lengths
    if fmt is None or len(fmt) < 16 or samples is None:
        raise ConfigError(f"{name} is a damaged WAV file (its fmt or data chunk is missing); export it again.")
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]   # the sub-format GUID begins with the plain format tag
    width = bits // 8
    dtype = _DTYPES.get((tag, bits))
    if dtype is None or channels < 1 or rate < 1 or align != channels * width:
        kind = {PCM: "integer PCM", IEEE_FLOAT: "float"}.get(tag, f"format tag {tag}")
        raise ConfigError(f"{name} uses an unsupported WAV encoding ({kind}, {bits}-bit, {channels} channels); "
                          f"convert it to 16-bit PCM.")
    frames = len(samples) // align
    if frames == 0:
        raise ConfigError(f"{name} holds no samples; record or export it again.")
    x = _to_float(samples[:frames * align], tag, bits).reshape(frames, channels)
    mono = x.mean(axis=1) if channels > 1 else x[:, 0]
    return np.clip(np.nan_to_num(mono), -1.0, 1.0).astype(np.float32), int(rate)


_DTYPES = {(PCM, 8): np.uint8, (PCM, 16): np.int16, (PCM, 24): np.uint8, (PCM, 32): np.int32,
           (IEEE_FLOAT, 32): np.float32, (IEEE_FLOAT, 64): np.float64}


def _to_float(raw: bytes, tag: int, bits: int) -> np.ndarray:
    """Little-endian sample bytes as float64 in about [-1, 1] (8-bit PCM is unsigned, the others signed)."""
    if tag == IEEE_FLOAT:
        return np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
    if bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float64) / float(1 << 23)
    return np.frombuffer(raw, dtype=f"<i{bits // 8}").astype(np.float64) / float(1 << (bits - 1))


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A complete 16-bit PCM mono WAV file as bytes (samples clipped to [-1, 1])."""
    x = np.clip(np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1)), -1.0, 1.0)
    pcm = np.round(x * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int) -> None:
    """Save samples as 16-bit PCM mono; the file appears complete or not at all (temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = wav_bytes(samples, rate)
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask's permissions, unlike mkstemp
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """x at rate_out, band-limited: each output sample is the input convolved with a Kaiser-windowed sinc
    centred on its exact position in input time. The cut-off is ROLLOFF times the lower of the two Nyquist
    frequencies, so going down removes what the new rate cannot hold instead of folding it back."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    rate_in, rate_out = int(rate_in), int(rate_out)
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sampling rates must be positive, got {rate_in} and {rate_out}")
    if rate_in == rate_out or len(x) == 0:
        return x.copy()
    g = gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g          # output n sits at input time n * down / up
    cutoff = ROLLOFF * min(1.0, up / down)          # as a fraction of the input Nyquist frequency
    half = int(np.ceil(SINC_ZEROS / cutoff))        # kernel half-width in input samples
    offsets = np.arange(-half + 1, half + 1)        # taps relative to floor(position)
    n_out = -(-len(x) * up // down)
    padded = np.concatenate([np.zeros(half, np.float64), x.astype(np.float64), np.zeros(half + 1, np.float64)])
    table = _kernel(offsets[None, :] - np.arange(up)[:, None] / up, cutoff, half) if up <= _TABLE_MAX else None
    out = np.empty(n_out, dtype=np.float64)
    step = max(1, (1 << 20) // len(offsets))        # about a million taps per chunk keeps memory small
    for start in range(0, n_out, step):
        n = np.arange(start, min(n_out, start + step), dtype=np.int64)
        base, phase = (n * down) // up, (n * down) % up
        taps = table[phase] if table is not None else _kernel(offsets[None, :] - (phase / up)[:, None], cutoff,
                                                              half)
        out[start:start + len(n)] = (padded[(base + half)[:, None] + offsets[None, :]] * taps).sum(axis=1)
    return out.astype(np.float32)


def _kernel(t: np.ndarray, cutoff: float, half: int) -> np.ndarray:
    """The low-pass kernel at t input samples from the centre: cutoff * sinc(cutoff * t), Kaiser-windowed
    over |t| < half; its taps sum to about 1, so the pass band keeps its level."""
    ratio = np.clip(t / half, -1.0, 1.0)
    window = np.i0(KAISER_BETA * np.sqrt(1.0 - ratio * ratio)) / np.i0(KAISER_BETA)
    return cutoff * np.sinc(cutoff * t) * window
