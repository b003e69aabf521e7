"""hyperloglog and bloom_filter for the sandbox, with lua_sandbox's algorithms (spec section 7).

The Lua side (lua_host.lua) only holds a handle; registers and bits live here because the hashes need
64- and 32-bit integer arithmetic that Lua 5.1 lacks.
"""

from __future__ import annotations

import math
import struct

_M64 = 0xFFFFFFFFFFFFFFFF
_M32 = 0xFFFFFFFF

HLL_P = 14
HLL_REGISTERS = 1 << HLL_P  # 16384
HLL_Q = 64 - HLL_P
HLL_BITS = 6
HLL_REGISTERS_BYTES = HLL_REGISTERS * HLL_BITS // 8  # 12288
HLL_HEADER = 16
HLL_SIZE = HLL_HEADER + HLL_REGISTERS_BYTES  # 12304: the `HYLL` struct
_HLL_ALPHA = 0.7213 / (1 + 1.079 / HLL_REGISTERS)


def key_bytes(key: bytes | str | float | int) -> bytes:
    """A sketch key as bytes: strings as is, numbers as their 8-byte native double."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    return struct.pack("=d", float(key))


def murmurhash64a(data: bytes, seed: int = 0xADC83B19) -> int:
    """MurmurHash64A (as in Redis' hyperloglog.c)."""
    m = 0xC6A4A7935BD1E995
    r = 47
    length = len(data)
    h = (seed ^ (length * m)) & _M64
    nblocks = length // 8
    for (k,) in struct.iter_unpack("<Q", data[: nblocks * 8]):
        k = (k * m) & _M64
        k ^= k >> r
        k = (k * m) & _M64
        h ^= k
        h = (h * m) & _M64
    tail = data[nblocks * 8:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & _M64
    h ^= h >> r
    h = (h * m) & _M64
    h ^= h >> r
    return h


class HyperLogLog:
    """Redis dense HLL, P=14, one byte per register in memory, packed 6-bit in its byte form."""

    __slots__ = ("registers", "_card")

    def __init__(self) -> None:
        self.registers = bytearray(HLL_REGISTERS)
        self._card: int | None = 0

    def add(self, key: bytes | str | float | int) -> bool:
        """Add a key; True when a register changed."""
        h = murmurhash64a(key_bytes(key))
        index = h & (HLL_REGISTERS - 1)
        h >>= HLL_P
        h |= 1 << HLL_Q
        count = 1
        bit = 1
        while not (h & bit):
            count += 1
            bit <<= 1
        if count > self.registers[index]:
            self.registers[index] = count
            self._card = None
            return True
        return False

    def count(self) -> int:
        """The cardinality estimate (cached until the next change)."""
        if self._card is None:
            self._card = self._estimate()
        return self._card

    def _estimate(self) -> int:
        regs = self.registers
        ez = regs.count(0)
        e = 0.0
        for value in range(64):
            n = regs.count(value) if value else ez
            if n:
                e += n * (2.0 ** -value)
        m = HLL_REGISTERS
        e = (1 / e) * _HLL_ALPHA * m * m
        if e < m * 2.5 and ez != 0:
            e = m * math.log(m / ez)
        elif e < 72000:
            bias = (5.9119e-18 * e ** 4 - 1.4253e-12 * e ** 3 + 1.2940e-7 * e ** 2 - 5.2921e-3 * e + 83.3216)
            e -= e * (bias / 100)
        return int(e)

    def clear(self) -> None:
        self.registers = bytearray(HLL_REGISTERS)
        self._card = 0

    def to_bytes(self) -> bytes:
        """The 12304-byte `HYLL` struct: magic, encoding 0 (dense), 3 unused, cached card, registers."""
        packed = 0
        for i, v in enumerate(self.registers):
            if v:
                packed |= v << (i * HLL_BITS)
        regs = packed.to_bytes(HLL_REGISTERS_BYTES, "little")
        if self._card is None:
            card = bytes(7) + b"\x80"  # cache invalid: MSB of the last byte set (Redis)
        else:
            card = struct.pack("<Q", self._card)
        return b"HYLL" + bytes(4) + card + regs

    def from_bytes(self, data: bytes) -> None:
        """Restore from the `HYLL` struct; raises ValueError when it is not one."""
        if len(data) != HLL_SIZE or data[:4] != b"HYLL":
            raise ValueError(f"fromstring() bytes found: {len(data)}, expected {HLL_SIZE}")
        packed = int.from_bytes(data[HLL_HEADER:], "little")
        regs = bytearray(HLL_REGISTERS)
        for i in range(HLL_REGISTERS):
            regs[i] = (packed >> (i * HLL_BITS)) & 63
        self.registers = regs
        card = data[8:16]
        self._card = None if card[7] & 0x80 else struct.unpack("<Q", card)[0]


# -- bloom filter -------------------------------------------------------------------------------
_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32."""
    length = len(data)
    i = 0
    if length >= 16:
        v1 = (seed + _P1 + _P2) & _M32
        v2 = (seed + _P2) & _M32
        v3 = seed & _M32
        v4 = (seed - _P1) & _M32
        limit = length - 16
        while i <= limit:
            a, b, c, d = struct.unpack_from("<4I", data, i)
            v1 = (_rotl32((v1 + a * _P2) & _M32, 13) * _P1) & _M32
            v2 = (_rotl32((v2 + b * _P2) & _M32, 13) * _P1) & _M32
            v3 = (_rotl32((v3 + c * _P2) & _M32, 13) * _P1) & _M32
            v4 = (_rotl32((v4 + d * _P2) & _M32, 13) * _P1) & _M32
            i += 16
        h = (_rotl32(v1, 1) + _rotl32(v2, 7) + _rotl32(v3, 12) + _rotl32(v4, 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + length) & _M32
    while i + 4 <= length:
        (k,) = struct.unpack_from("<I", data, i)
        h = (_rotl32((h + k * _P3) & _M32, 17) * _P4) & _M32
        i += 4
    while i < length:
        h = (_rotl32((h + data[i] * _P5) & _M32, 11) * _P1) & _M32
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


class BloomFilter:
    """lua_bloom_filter: `bits = ceil(items·ln p / ln(1/2^ln2))`, bit i = XXH32(key, seed i) % bits."""

    __slots__ = ("items", "probability", "bits", "hashes", "data", "count")

    def __init__(self, items: float, probability: float) -> None:
        self.items = items
        self.probability = probability
        self.bits = math.ceil(items * math.log(probability) / math.log(1.0 / (2 ** math.log(2))))
        self.hashes = max(1, round(math.log(2) * self.bits / items))
        self.data = bytearray((self.bits + 7) // 8)
        self.count = 0

    def _positions(self, key: bytes) -> list[int]:
        return [xxh32(key, seed) % self.bits for seed in range(self.hashes)]

    def add(self, key: bytes | str | float | int) -> bool:
        """Add a key; True when any bit was newly set."""
        added = False
        data = self.data
        for pos in self._positions(key_bytes(key)):
            byte, mask = pos >> 3, 1 << (pos & 7)
            if not data[byte] & mask:
                data[byte] |= mask
                added = True
        if added:
            self.count += 1
        return added

    def query(self, key: bytes | str | float | int) -> bool:
        data = self.data
        return all(data[p >> 3] & (1 << (p & 7)) for p in self._positions(key_bytes(key)))

    def clear(self) -> None:
        self.data = bytearray(len(self.data))
        self.count = 0

    def from_bytes(self, data: bytes, count: int) -> None:
        if len(data) != len(self.data):
            raise ValueError(f"fromstring() bytes found: {len(data)}, expected {len(self.data)}")
        self.data = bytearray(data)
        self.count = int(count)
