# The C RDB encoder (docs/codec.md "The encoder API"). Included by _codec.pyx.
#
# Each call builds its output in a growable malloc'd buffer (`out`) and
# returns it as bytes; compact containers (listpack, ziplist, intset, stream
# nodes, quicklist nodes) are written straight into a second buffer (`cb`)
# and then stored as one RDB string (with the integer / LZF rules of
# RDB_FORMAT §5). A failed entry leaves nothing behind: the buffer is
# rewound and the CRC only ever covers returned bytes. Memory is bounded by
# the largest single entry.

from cpython.bytes cimport PyBytes_Check
from cpython.float cimport PyFloat_Check
from cpython.long cimport PyLong_Check
from libc.stdlib cimport calloc, qsort
from libc.math cimport isnan, isinf, floor, fabs, signbit

from rdbkit.errors import EncodeError

cdef extern from "Python.h":
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int *ptype) except NULL
    void PyMem_Free(void *p)

cdef extern from "lzf.h":
    enum:
        RDBKIT_LZF_HLOG
    size_t rdbkit_lzf_compress(const uint8_t *inp, size_t in_len, uint8_t *out,
                               size_t out_len, uint32_t *htab) nogil


# ---- growable byte buffer ----

cdef struct EBuf:
    uint8_t *p
    size_t n
    size_t cap


cdef int eb_grow(EBuf *b, size_t need) except -1:
    cdef size_t cap = b.cap if b.cap else 4096
    cdef uint8_t *np
    while cap < need:
        cap *= 2
    np = <uint8_t *>realloc(b.p, cap)
    if np == NULL:
        raise MemoryError()
    b.p = np
    b.cap = cap
    return 0


cdef inline int eb_reserve(EBuf *b, size_t extra) except -1:
    if b.n + extra > b.cap:
        eb_grow(b, b.n + extra)
    return 0


cdef inline int eb_put(EBuf *b, const void *d, size_t n) except -1:
    if b.n + n > b.cap:
        eb_grow(b, b.n + n)
    memcpy(b.p + b.n, d, n)
    b.n += n
    return 0


cdef inline int eb_byte(EBuf *b, uint8_t v) except -1:
    if b.n + 1 > b.cap:
        eb_grow(b, b.n + 1)
    b.p[b.n] = v
    b.n += 1
    return 0


cdef inline void st16(uint8_t *p, uint64_t v) noexcept nogil:
    p[0] = <uint8_t>v
    p[1] = <uint8_t>(v >> 8)


cdef inline void st32(uint8_t *p, uint64_t v) noexcept nogil:
    p[0] = <uint8_t>v
    p[1] = <uint8_t>(v >> 8)
    p[2] = <uint8_t>(v >> 16)
    p[3] = <uint8_t>(v >> 24)


cdef inline void st64(uint8_t *p, uint64_t v) noexcept nogil:
    st32(p, v)
    st32(p + 4, v >> 32)


cdef inline void st32be(uint8_t *p, uint64_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline void st64be(uint8_t *p, uint64_t v) noexcept nogil:
    st32be(p, v >> 32)
    st32be(p + 4, v)


cdef inline int eb_i64(EBuf *b, int64_t v) except -1:
    eb_reserve(b, 8)
    st64(b.p + b.n, <uint64_t>v)
    b.n += 8
    return 0


cdef inline int eb_len(EBuf *b, uint64_t v) except -1:
    """RDB length, shortest form (RDB_FORMAT §5)."""
    eb_reserve(b, 9)
    cdef uint8_t *p = b.p + b.n
    if v < 64:
        p[0] = <uint8_t>v
        b.n += 1
    elif v < 16384:
        p[0] = <uint8_t>(0x40 | (v >> 8))
        p[1] = <uint8_t>v
        b.n += 2
    elif v <= 0xFFFFFFFFu:
        p[0] = 0x80
        st32be(p + 1, v)
        b.n += 5
    else:
        p[0] = 0x81
        st64be(p + 1, v)
        b.n += 9
    return 0


cdef inline int eb_sid_raw(EBuf *b, uint64_t ms, uint64_t seq) except -1:
    eb_reserve(b, 16)
    st64be(b.p + b.n, ms)
    st64be(b.p + b.n + 8, seq)
    b.n += 16
    return 0


# ---- integers in text ----

cdef inline bint canon_i64(const uint8_t *s, size_t n, int64_t *out) noexcept nogil:
    """True if s is the canonical decimal text of an int64 (no '+', no leading 0, no '-0')."""
    cdef size_t i = 0
    cdef bint neg = False
    cdef uint64_t v = 0
    cdef unsigned d
    if n == 0 or n > 20:
        return False
    if s[0] == 45:
        if n == 1:
            return False
        neg = True
        i = 1
    if s[i] == 48:
        if n == 1:
            out[0] = 0
            return True
        return False
    while i < n:
        d = <unsigned>s[i] - 48u
        if d > 9:
            return False
        if v > (0xFFFFFFFFFFFFFFFFu - d) // 10u:
            return False
        v = v * 10u + d
        i += 1
    if neg:
        if v > 0x8000000000000000u:
            return False
        out[0] = <int64_t>(0u - v)
    else:
        if v > 0x7FFFFFFFFFFFFFFFu:
            return False
        out[0] = <int64_t>v
    return True


# ---- listpack (RDB_FORMAT §6) ----

cdef struct LP:
    size_t start
    size_t count


cdef inline int lp_open(EBuf *b, LP *lp) except -1:
    eb_reserve(b, 6)
    lp.start = b.n
    lp.count = 0
    b.n += 6
    return 0


cdef inline int lp_close(EBuf *b, LP *lp) except -1:
    eb_byte(b, 0xFF)
    st32(b.p + lp.start, b.n - lp.start)
    st16(b.p + lp.start + 4, lp.count if lp.count < 65535 else 65535)
    return 0


cdef inline int lp_int(EBuf *b, LP *lp, int64_t v) except -1:
    eb_reserve(b, 10)
    cdef uint8_t *p = b.p + b.n
    cdef size_t l
    cdef uint64_t u
    if 0 <= v <= 127:
        p[0] = <uint8_t>v
        l = 1
    elif -4096 <= v <= 4095:
        u = (<uint64_t>v) & 0x1FFF
        p[0] = <uint8_t>(0xC0 | (u >> 8))
        p[1] = <uint8_t>u
        l = 2
    elif -32768 <= v <= 32767:
        p[0] = 0xF1
        st16(p + 1, <uint64_t>v)
        l = 3
    elif -8388608 <= v <= 8388607:
        p[0] = 0xF2
        p[1] = <uint8_t>v
        p[2] = <uint8_t>((<uint64_t>v) >> 8)
        p[3] = <uint8_t>((<uint64_t>v) >> 16)
        l = 4
    elif -2147483648 <= v <= 2147483647:
        p[0] = 0xF3
        st32(p + 1, <uint64_t>v)
        l = 5
    else:
        p[0] = 0xF4
        st64(p + 1, <uint64_t>v)
        l = 9
    p[l] = <uint8_t>l
    b.n += l + 1
    lp.count += 1
    return 0


cdef inline int lp_raw(EBuf *b, LP *lp, const uint8_t *s, size_t n) except -1:
    cdef size_t h, l, bl
    cdef uint8_t *p
    eb_reserve(b, n + 10)
    p = b.p + b.n
    if n < 64:
        p[0] = <uint8_t>(0x80 | n)
        h = 1
    elif n < 4096:
        p[0] = <uint8_t>(0xE0 | (n >> 8))
        p[1] = <uint8_t>n
        h = 2
    else:
        p[0] = 0xF0
        st32(p + 1, n)
        h = 5
    memcpy(p + h, s, n)
    l = h + n
    p += l
    if l < 128:
        p[0] = <uint8_t>l
        bl = 1
    elif l < 16384:
        p[0] = <uint8_t>(l >> 7)
        p[1] = <uint8_t>((l & 127) | 128)
        bl = 2
    elif l < 2097152:
        p[0] = <uint8_t>(l >> 14)
        p[1] = <uint8_t>(((l >> 7) & 127) | 128)
        p[2] = <uint8_t>((l & 127) | 128)
        bl = 3
    elif l < 268435456:
        p[0] = <uint8_t>(l >> 21)
        p[1] = <uint8_t>(((l >> 14) & 127) | 128)
        p[2] = <uint8_t>(((l >> 7) & 127) | 128)
        p[3] = <uint8_t>((l & 127) | 128)
        bl = 4
    else:
        p[0] = <uint8_t>(l >> 28)
        p[1] = <uint8_t>(((l >> 21) & 127) | 128)
        p[2] = <uint8_t>(((l >> 14) & 127) | 128)
        p[3] = <uint8_t>(((l >> 7) & 127) | 128)
        p[4] = <uint8_t>((l & 127) | 128)
        bl = 5
    b.n += l + bl
    lp.count += 1
    return 0


cdef inline int lp_str(EBuf *b, LP *lp, const uint8_t *s, size_t n) except -1:
    cdef int64_t v
    if canon_i64(s, n, &v):
        return lp_int(b, lp, v)
    return lp_raw(b, lp, s, n)


# ---- ziplist (RDB_FORMAT §6) ----

cdef struct ZL:
    size_t start
    size_t count
    size_t prev      # size of the previous entry
    size_t tail      # offset of the last entry from start


cdef inline int zl_open(EBuf *b, ZL *z) except -1:
    eb_reserve(b, 10)
    z.start = b.n
    z.count = 0
    z.prev = 0
    z.tail = 10
    b.n += 10
    return 0


cdef inline int zl_close(EBuf *b, ZL *z) except -1:
    eb_byte(b, 0xFF)
    st32(b.p + z.start, b.n - z.start)
    st32(b.p + z.start + 4, z.tail)
    st16(b.p + z.start + 8, z.count if z.count < 65535 else 65535)
    return 0


cdef inline size_t zl_prevlen(uint8_t *p, size_t prev) noexcept nogil:
    if prev < 254:
        p[0] = <uint8_t>prev
        return 1
    p[0] = 0xFE
    st32(p + 1, prev)
    return 5


cdef inline int zl_int(EBuf *b, ZL *z, int64_t v) except -1:
    eb_reserve(b, 16)
    cdef size_t at = b.n
    cdef uint8_t *p = b.p + at
    cdef size_t l = zl_prevlen(p, z.prev)
    p += l
    if 0 <= v <= 12:
        p[0] = <uint8_t>(0xF1 + v)
        l += 1
    elif -128 <= v <= 127:
        p[0] = 0xFE
        p[1] = <uint8_t>v
        l += 2
    elif -32768 <= v <= 32767:
        p[0] = 0xC0
        st16(p + 1, <uint64_t>v)
        l += 3
    elif -8388608 <= v <= 8388607:
        p[0] = 0xF0
        p[1] = <uint8_t>v
        p[2] = <uint8_t>((<uint64_t>v) >> 8)
        p[3] = <uint8_t>((<uint64_t>v) >> 16)
        l += 4
    elif -2147483648 <= v <= 2147483647:
        p[0] = 0xD0
        st32(p + 1, <uint64_t>v)
        l += 5
    else:
        p[0] = 0xE0
        st64(p + 1, <uint64_t>v)
        l += 9
    b.n += l
    z.tail = at - z.start
    z.prev = l
    z.count += 1
    return 0


cdef inline int zl_raw(EBuf *b, ZL *z, const uint8_t *s, size_t n) except -1:
    eb_reserve(b, n + 10)
    cdef size_t at = b.n
    cdef uint8_t *p = b.p + at
    cdef size_t l = zl_prevlen(p, z.prev)
    p += l
    if n < 64:
        p[0] = <uint8_t>n
        l += 1
    elif n < 16384:
        p[0] = <uint8_t>(0x40 | (n >> 8))
        p[1] = <uint8_t>n
        l += 2
    else:
        p[0] = 0x80
        st32be(p + 1, n)
        l += 5
    memcpy(b.p + at + l, s, n)
    l += n
    b.n += l
    z.tail = at - z.start
    z.prev = l
    z.count += 1
    return 0


cdef inline int zl_str(EBuf *b, ZL *z, const uint8_t *s, size_t n) except -1:
    cdef int64_t v
    if n < 32 and canon_i64(s, n, &v):
        return zl_int(b, z, v)
    return zl_raw(b, z, s, n)


# ---- small helpers ----

cdef int _cmp_i64(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const int64_t *>a)[0]
    cdef int64_t y = (<const int64_t *>b)[0]
    return (x > y) - (x < y)


cdef object _fail_key(object key, str msg):
    if key is None:
        raise EncodeError(msg)
    raise EncodeError(f"key {key!r}: {msg}")


class _NeedBytes(Exception):
    """Internal: a container holds bytearray/memoryview items; convert it and retry."""


cdef object _as_bytes(object o, object key, str what):
    if PyBytes_Check(o):
        return o
    if isinstance(o, (bytearray, memoryview)):
        return bytes(o)
    _fail_key(key, f"{what} must be bytes, not {type(o).__name__}")


cdef object _norm(object value):
    """A copy of a container with bytearray/memoryview items turned into bytes."""
    cb = lambda x: x if PyBytes_Check(x) else (bytes(x) if isinstance(x, (bytearray, memoryview)) else x)
    if isinstance(value, dict):
        return {cb(k): cb(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return {cb(x) for x in value}
    return [cb(x) for x in value]


cdef inline const uint8_t *_bp(object o, size_t *n, object key, str what,
                               uint64_t maxlen) except NULL:
    if not PyBytes_Check(o):
        if isinstance(o, (bytearray, memoryview)):
            raise _NeedBytes()
        _fail_key(key, f"{what} must be bytes, not {type(o).__name__}")
    n[0] = <size_t>PyBytes_GET_SIZE(o)
    if n[0] > maxlen:
        _fail_key(key, f"{what} of {n[0]} bytes exceeds max_string_len {maxlen}")
    return <const uint8_t *>PyBytes_AS_STRING(o)


cdef double _score(object s, object key) except? -1.0:
    cdef double d = 0.0
    if not (PyFloat_Check(s) or PyLong_Check(s)) or isinstance(s, bool):
        _fail_key(key, f"zset score must be a float, not {type(s).__name__}")
    try:
        d = float(s)
    except OverflowError:
        _fail_key(key, f"zset score {s!r} does not fit a double")
    if isnan(d):
        _fail_key(key, "zset score is NaN")
    return d


cdef object _zkey(object kv):
    return (float(kv[1]), kv[0])


cdef inline bint _small_int_double(double d, int64_t *out) noexcept nogil:
    """An integral score that fits int64 is stored in a container as an integer (like Redis)."""
    if d == 0.0 and signbit(d):
        return False
    if -9223372036854775808.0 <= d < 9223372036854775808.0 and floor(d) == d:
        out[0] = <int64_t>d
        return True
    return False


cdef bytes _dtext(double d):
    """Shortest round-trip text of a finite or infinite double (Python repr)."""
    cdef char *s
    if isinf(d):
        return b"inf" if d > 0 else b"-inf"
    if d == 0.0 and signbit(d):
        return b"-0"
    s = PyOS_double_to_string(d, b'r', 0, 0, NULL)
    try:
        return <bytes>s
    finally:
        PyMem_Free(s)


# quicklist node record
cdef struct QNode:
    size_t start
    size_t end
    int plain

cdef enum:
    QL_NODE_MAX = 8192                # list-max-listpack-size -2: 8 KiB nodes
    QL_PLAIN_MIN = 1 << 30            # Redis 7.0's packed threshold (1 GiB)
    STREAM_NODE_MAX_BYTES = 4096      # stream-node-max-bytes
    STREAM_NODE_MAX_ENTRIES = 100     # stream-node-max-entries


cdef class Encoder:
    """Encodes entries to RDB bytes for one target version (docs/codec.md)."""

    cdef EBuf out, cb, lz
    cdef uint32_t *htab
    cdef QNode *qn
    cdef size_t qn_cap
    cdef int ver
    cdef bint valkey, plain, compress, drop
    cdef uint64_t max_str
    cdef uint64_t crc
    cdef readonly int state          # 0 new, 1 begun, 2 finished
    cdef object cur_db
    cdef readonly list dropped
    cdef readonly int version
    cdef readonly str magic

    def __cinit__(self):
        self.out.p = NULL
        self.out.n = self.out.cap = 0
        self.cb.p = NULL
        self.cb.n = self.cb.cap = 0
        self.lz.p = NULL
        self.lz.n = self.lz.cap = 0
        self.htab = <uint32_t *>calloc(1 << RDBKIT_LZF_HLOG, sizeof(uint32_t))
        self.qn = NULL
        self.qn_cap = 0
        if self.htab == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.out.p)
        free(self.cb.p)
        free(self.lz.p)
        free(self.htab)
        free(self.qn)

    def __init__(self, version=12, *, magic=None, plain=False, compress=True,
                 drop_unsupported=False, max_string_len=DEFAULT_MAX_STRING_LEN):
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"version must be an int, not {version!r}")
        if magic is None:
            magic = "VALKEY" if version >= 80 else "REDIS"
        if magic == "REDIS":
            if not 6 <= version <= 12:
                raise ValueError(f"unsupported target version {version} for REDIS (6-12)")
        elif magic == "VALKEY":
            if version != 80:
                raise ValueError(f"unsupported target version {version} for VALKEY (80)")
        else:
            raise ValueError(f"magic must be 'REDIS' or 'VALKEY', not {magic!r}")
        if max_string_len < 0:
            raise ValueError("max_string_len must be >= 0")
        self.ver = version
        self.version = version
        self.magic = magic
        self.valkey = magic == "VALKEY"
        self.plain = bool(plain)
        self.compress = bool(compress)
        self.drop = bool(drop_unsupported)
        self.max_str = max_string_len
        self.crc = 0
        self.state = 0
        self.cur_db = None
        self.dropped = []

    # -- output --

    cdef bytes _emit(self):
        cdef bytes r = PyBytes_FromStringAndSize(<char *>self.out.p, self.out.n)
        self.crc = rdbkit_crc64(self.crc, self.out.p, self.out.n)
        self.out.n = 0
        if self.out.cap > (64 << 20):     # do not keep a huge entry's buffer around
            free(self.out.p)
            self.out.p = NULL
            self.out.cap = 0
        if self.cb.cap > (64 << 20):
            free(self.cb.p)
            self.cb.p = NULL
            self.cb.cap = 0
        if self.lz.cap > (64 << 20):
            free(self.lz.p)
            self.lz.p = NULL
            self.lz.cap = 0
        return r

    cdef int _state(self, int want) except -1:
        if self.state != want:
            if self.state == 2:
                raise RuntimeError("the encoder is finished")
            if want == 0:
                raise RuntimeError("begin() was already called")
            raise RuntimeError("begin() must be called first")
        return 0

    cdef str _need(self, str feature, str need):
        return f"{feature} need {need} (target is {self.magic} {self.ver})"

    cdef int _unsupported(self, object key, str feature, str msg) except -1:
        """Record a dropped feature (returns 1) or raise EncodeError."""
        if self.drop:
            self.dropped.append((key, feature))
            return 1
        _fail_key(key, msg)
        return -1

    # -- strings (RDB_FORMAT §5) --

    cdef int _str(self, EBuf *b, const uint8_t *s, size_t n) except -1:
        cdef int64_t v
        cdef size_t clen
        cdef uint8_t *p
        if n <= 11 and canon_i64(s, n, &v) and -2147483648 <= v <= 2147483647:
            eb_reserve(b, 5)
            p = b.p + b.n
            if -128 <= v <= 127:
                p[0] = 0xC0
                p[1] = <uint8_t>v
                b.n += 2
            elif -32768 <= v <= 32767:
                p[0] = 0xC1
                st16(p + 1, <uint64_t>v)
                b.n += 3
            else:
                p[0] = 0xC2
                st32(p + 1, <uint64_t>v)
                b.n += 5
            return 0
        if self.compress and n > 20:
            if self.lz.cap < n:
                eb_grow(&self.lz, n)
            with nogil:
                clen = rdbkit_lzf_compress(s, n, self.lz.p, n - 4, self.htab)
            if clen != 0:
                eb_reserve(b, clen + 19)
                eb_byte(b, 0xC3)
                eb_len(b, clen)
                eb_len(b, n)
                memcpy(b.p + b.n, self.lz.p, clen)
                b.n += clen
                return 0
        eb_len(b, n)
        eb_put(b, s, n)
        return 0

    cdef int _pystr(self, EBuf *b, object o, object key, str what) except -1:
        cdef size_t n
        cdef const uint8_t *s = _bp(o, &n, key, what, self.max_str)
        return self._str(b, s, n)

    # -- begin / finish --

    def begin(self, aux=None, functions=(), module_aux=()) -> bytes:
        """Magic, AUX fields, module aux "before" records, functions."""
        self._state(0)
        cdef EBuf *b = &self.out
        self.out.n = 0
        try:
            hdr = (f"VALKEY{self.ver:03d}" if self.valkey else f"REDIS{self.ver:04d}").encode()
            eb_put(b, PyBytes_AS_STRING(hdr), 9)
            if aux:
                items = aux.items() if isinstance(aux, dict) else aux
                for k, v in items:
                    if self.ver < 7:
                        continue
                    eb_byte(b, 250)
                    self._pystr(b, _auxb(k), None, "aux field name")
                    self._pystr(b, _auxb(v), None, "aux field value")
            for ma in module_aux:
                self._module_aux(b, ma, 1)
            for code in functions:
                if self.ver < 10:
                    feat = f"function library {_lib_name(_auxb(code))!r}"
                    self._unsupported(None, feat, self._need(feat, "RDB 10"))
                    continue
                eb_byte(b, 245)
                self._pystr(b, _auxb(code), None, "function code")
        except BaseException:
            self.out.n = 0
            raise
        self.state = 1
        return self._emit()

    cdef int _module_aux(self, EBuf *b, object ma, int when) except -1:
        if not isinstance(ma, _model.ModuleAux):
            raise EncodeError(f"module aux must be a model.ModuleAux, got {type(ma).__name__}")
        if self.ver < 9:
            feat = f"module aux data of {ma.name!r}"
            self._unsupported(None, feat, self._need(feat, "RDB 9"))
            return 0
        raw = ma.raw
        if not PyBytes_Check(raw):
            raise EncodeError("module aux raw must be bytes")
        eb_byte(b, 247)
        eb_len(b, ma.module_id)
        eb_len(b, 2)
        eb_len(b, ma.when if ma.when in (1, 2) else when)
        eb_put(b, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
        return 0

    def function(self, code) -> bytes:
        """A FUNCTION2 record between entries (v >= 10); readers accept it anywhere."""
        self._state(1)
        cdef EBuf *b = &self.out
        self.out.n = 0
        if self.ver < 10:
            feat = f"function library {_lib_name(_auxb(code))!r}"
            self._unsupported(None, feat, self._need(feat, "RDB 10"))
            return b""
        try:
            eb_byte(b, 245)
            self._pystr(b, _auxb(code), None, "function code")
        except BaseException:
            self.out.n = 0
            raise
        return self._emit()

    def resize_hint(self, db, db_size, expires_size) -> bytes:
        """A RESIZEDB record (v >= 7) for db; selects db first if needed."""
        self._state(1)
        if self.ver < 7:
            return b""
        cdef EBuf *b = &self.out
        self.out.n = 0
        if db < 0:
            raise ValueError("db must be >= 0")
        if self.cur_db is None or db != self.cur_db:
            eb_byte(b, 254)
            eb_len(b, db)
        eb_byte(b, 251)
        eb_len(b, db_size)
        eb_len(b, expires_size)
        self.cur_db = db
        return self._emit()

    def finish(self, module_aux_after=()) -> bytes:
        """Module aux "after" records, EOF and the CRC64."""
        self._state(1)
        cdef EBuf *b = &self.out
        self.out.n = 0
        try:
            for ma in module_aux_after:
                self._module_aux(b, ma, 2)
        except BaseException:
            self.out.n = 0
            raise
        eb_byte(b, 255)
        self.crc = rdbkit_crc64(self.crc, self.out.p, self.out.n)
        eb_reserve(b, 8)
        st64(b.p + b.n, self.crc)
        b.n += 8
        r = PyBytes_FromStringAndSize(<char *>self.out.p, self.out.n)
        self.out.n = 0
        self.state = 2
        return r

    # -- entries --

    def write(self, entry) -> bytes:
        """One entry: SELECTDB if needed, prefix opcodes, type, key, value."""
        self._state(1)
        cdef EBuf *b = &self.out
        cdef int t
        key = entry.key
        db = entry.db
        self.out.n = 0
        try:
            if not PyBytes_Check(key):
                if isinstance(key, (bytearray, memoryview)):
                    key = bytes(key)
                else:
                    raise EncodeError(f"key {key!r}: key must be bytes, got {type(key).__name__}")
            if <uint64_t>PyBytes_GET_SIZE(key) > self.max_str:
                raise EncodeError(f"key {key[:64]!r}...: key of {PyBytes_GET_SIZE(key)} bytes "
                                  f"exceeds max_string_len {self.max_str}")
            if not isinstance(db, int) or isinstance(db, bool) or db < 0:
                _fail_key(key, f"db must be a non-negative int, got {db!r}")
            if self.cur_db is None or db != self.cur_db:
                eb_byte(b, 254)
                eb_len(b, db)
            exp = entry.expire_ms
            if exp is not None:
                if type(exp) is not int:
                    _fail_key(key, f"expire_ms must be an int64, got {exp!r}")
                eb_byte(b, 252)
                eb_i64(b, exp)
            if self.ver >= 9:
                idle = entry.idle
                if idle is not None:
                    if type(idle) is not int or idle < 0:
                        _fail_key(key, f"idle must be a non-negative int, got {idle!r}")
                    eb_byte(b, 248)
                    eb_len(b, idle)
                freq = entry.freq
                if freq is not None:
                    if type(freq) is not int or not 0 <= freq <= 255:
                        _fail_key(key, f"freq {freq!r} is not 0-255")
                    eb_byte(b, 249)
                    eb_byte(b, freq)
            t = self._value(b, key, entry.type, entry.value,
                            getattr(entry, "field_expires", None), True)
        except EncodeError:
            self.out.n = 0
            raise
        except (OverflowError, TypeError, ValueError, AttributeError) as e:
            self.out.n = 0
            raise EncodeError(f"key {key!r}: {e}") from e
        except BaseException:
            self.out.n = 0
            raise
        if t < 0:                     # dropped key
            self.out.n = 0
            return b""
        self.cur_db = db
        return self._emit()

    cdef int _value(self, EBuf *b, object key, object tname, object value, object fexp,
                    bint with_key) except -2:
        """Type byte, [key], value. Returns the type byte, or -1 if the key is dropped."""
        cdef size_t tpos = b.n
        cdef int t = 0
        if value is None:
            _fail_key(key, f"{tname} value is None")
        if tname == "stream" and self.ver < 9:
            self._unsupported(key, "stream", self._need("stream", "RDB 9"))
            return -1
        if tname == "module" and self.ver < 8:
            self._unsupported(key, "module value", self._need("module value", "RDB 8"))
            return -1
        eb_byte(b, 0)
        if with_key:
            self._pystr(b, key, key, "key")
        if fexp and tname != "hash":
            _fail_key(key, f"field_expires given for a {tname}")
        if tname == "string":
            value = _as_bytes(value, key, "string value")
            self._pystr(b, value, key, "string value")
            t = 0
        elif tname in ("list", "set", "zset", "hash"):
            mark = b.n
            try:
                t = self._container(b, key, tname, value, fexp)
            except _NeedBytes:
                b.n = mark
                t = self._container(b, key, tname, _norm(value), fexp)
        elif tname == "stream":
            try:
                t = self._stream(b, key, value)
            except _NeedBytes:
                _fail_key(key, "stream fields and values must be bytes")
        elif tname == "module":
            t = self._module(b, key, value)
        else:
            _fail_key(key, f"unknown type {tname!r}")
        b.p[tpos] = <uint8_t>t
        return t

    cdef int _container(self, EBuf *b, object key, object tname, object value,
                        object fexp) except -1:
        cdef int t = 0
        if tname == "list":
            t = self._list(b, key, value)
        elif tname == "set":
            t = self._set(b, key, value)
        elif tname == "zset":
            t = self._zset(b, key, value)
        elif tname == "hash":
            if fexp:
                fexp = _norm(fexp)
            t = self._hash(b, key, value, fexp)
        return t

    # -- lists --

    cdef int _qn_add(self, size_t i, size_t start, size_t end, int plain) except -1:
        cdef QNode *nq
        cdef size_t cap
        if i >= self.qn_cap:
            cap = self.qn_cap * 2 if self.qn_cap else 64
            nq = <QNode *>realloc(self.qn, cap * sizeof(QNode))
            if nq == NULL:
                raise MemoryError()
            self.qn = nq
            self.qn_cap = cap
        self.qn[i].start = start
        self.qn[i].end = end
        self.qn[i].plain = plain
        return 0

    cdef int _list(self, EBuf *b, object key, object value) except -1:
        cdef size_t n, cnt, i, ln, save, nodes = 0
        cdef const uint8_t *s
        cdef bint small = True
        cdef EBuf *cb = &self.cb
        cdef LP lp, lps
        cdef ZL zl, zls
        cdef bint open_ = False
        if not isinstance(value, (list, tuple)):
            _fail_key(key, f"list value must be a list, not {type(value).__name__}")
        cnt = len(value)
        if cnt == 0:
            _fail_key(key, "empty list")
        for o in value:
            s = _bp(o, &ln, key, "list element", self.max_str)
            if ln > 64:
                small = False
        if self.plain or (self.ver < 7 and (cnt > 512 or not small)):
            eb_len(b, cnt)
            for o in value:
                self._str(b, <const uint8_t *>PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o))
            return 1
        cb.n = 0
        if self.ver < 7:
            zl_open(cb, &zl)
            for o in value:
                zl_str(cb, &zl, <const uint8_t *>PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o))
            zl_close(cb, &zl)
            self._str(b, cb.p, cb.n)
            return 10
        if self.ver < 10:                  # quicklist of ziplists
            for o in value:
                s = <const uint8_t *>PyBytes_AS_STRING(o)
                ln = PyBytes_GET_SIZE(o)
                if not open_:
                    zl_open(cb, &zl)
                    open_ = True
                save = cb.n
                zls = zl
                zl_str(cb, &zl, s, ln)
                if cb.n + 1 - zl.start > QL_NODE_MAX and zl.count > 1:
                    cb.n = save
                    zl = zls
                    zl_close(cb, &zl)
                    self._qn_add(nodes, zl.start, cb.n, 0)
                    nodes += 1
                    zl_open(cb, &zl)
                    zl_str(cb, &zl, s, ln)
            zl_close(cb, &zl)
            self._qn_add(nodes, zl.start, cb.n, 0)
            nodes += 1
            eb_len(b, nodes)
            for i in range(nodes):
                self._str(b, cb.p + self.qn[i].start, self.qn[i].end - self.qn[i].start)
            return 14
        for o in value:                    # quicklist2 of listpacks (+ plain nodes)
            s = <const uint8_t *>PyBytes_AS_STRING(o)
            ln = PyBytes_GET_SIZE(o)
            if ln >= QL_PLAIN_MIN:
                if open_:
                    lp_close(cb, &lp)
                    self._qn_add(nodes, lp.start, cb.n, 0)
                    nodes += 1
                    open_ = False
                save = cb.n
                eb_put(cb, s, ln)
                self._qn_add(nodes, save, cb.n, 1)
                nodes += 1
                continue
            if not open_:
                lp_open(cb, &lp)
                open_ = True
            save = cb.n
            lps = lp
            lp_str(cb, &lp, s, ln)
            if cb.n + 1 - lp.start > QL_NODE_MAX and lp.count > 1:
                cb.n = save
                lp = lps
                lp_close(cb, &lp)
                self._qn_add(nodes, lp.start, cb.n, 0)
                nodes += 1
                lp_open(cb, &lp)
                lp_str(cb, &lp, s, ln)
        if open_:
            lp_close(cb, &lp)
            self._qn_add(nodes, lp.start, cb.n, 0)
            nodes += 1
        eb_len(b, nodes)
        for i in range(nodes):
            eb_len(b, 1 if self.qn[i].plain else 2)
            self._str(b, cb.p + self.qn[i].start, self.qn[i].end - self.qn[i].start)
        return 18

    # -- sets --

    cdef int _set(self, EBuf *b, object key, object value) except -1:
        cdef size_t cnt, ln, i, width
        cdef const uint8_t *s
        cdef bint ints = True, small = True
        cdef int64_t v, lo, hi
        cdef int64_t *arr
        cdef EBuf *cb = &self.cb
        cdef LP lp
        cdef uint8_t *p
        if not isinstance(value, (set, frozenset)):
            _fail_key(key, f"set value must be a set, not {type(value).__name__}")
        cnt = len(value)
        if cnt == 0:
            _fail_key(key, "empty set")
        for o in value:
            s = _bp(o, &ln, key, "set member", self.max_str)
            if ln > 64:
                small = False
            if ints and not canon_i64(s, ln, &v):
                ints = False
        if not self.plain and ints and cnt <= 512:
            arr = <int64_t *>malloc(cnt * sizeof(int64_t))
            if arr == NULL:
                raise MemoryError()
            try:
                i = 0
                for o in value:
                    canon_i64(<const uint8_t *>PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o), &arr[i])
                    i += 1
                qsort(arr, cnt, sizeof(int64_t), _cmp_i64)
                lo = arr[0]
                hi = arr[cnt - 1]
                if lo >= -32768 and hi <= 32767:
                    width = 2
                elif lo >= -2147483648 and hi <= 2147483647:
                    width = 4
                else:
                    width = 8
                cb.n = 0
                eb_reserve(cb, 8 + width * cnt)
                p = cb.p
                st32(p, width)
                st32(p + 4, cnt)
                p += 8
                for i in range(cnt):
                    if width == 2:
                        st16(p, <uint64_t>arr[i])
                    elif width == 4:
                        st32(p, <uint64_t>arr[i])
                    else:
                        st64(p, <uint64_t>arr[i])
                    p += width
                cb.n = 8 + width * cnt
            finally:
                free(arr)
            self._str(b, cb.p, cb.n)
            return 11
        if not self.plain and self.ver >= 11 and cnt <= 128 and small:
            cb.n = 0
            lp_open(cb, &lp)
            for o in value:
                lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o))
            lp_close(cb, &lp)
            self._str(b, cb.p, cb.n)
            return 20
        eb_len(b, cnt)
        for o in value:
            self._str(b, <const uint8_t *>PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o))
        return 2

    # -- sorted sets --

    cdef int _zset(self, EBuf *b, object key, object value) except -1:
        cdef size_t cnt, ln
        cdef bint small = True
        cdef double d
        cdef int64_t iv
        cdef EBuf *cb = &self.cb
        cdef LP lp
        cdef ZL zl
        cdef bytes txt
        cdef uint8_t dbuf[8]
        if not isinstance(value, dict):
            _fail_key(key, f"zset value must be a dict, not {type(value).__name__}")
        cnt = len(value)
        if cnt == 0:
            _fail_key(key, "empty zset")
        for m, sc in (<dict>value).items():
            _bp(m, &ln, key, "zset member", self.max_str)
            if ln > 64:
                small = False
            _score(sc, key)
        if not self.plain and cnt <= 128 and small:
            items = sorted((<dict>value).items(), key=_zkey)
            cb.n = 0
            if self.ver >= 10:
                lp_open(cb, &lp)
                for m, sc in items:
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(m), PyBytes_GET_SIZE(m))
                    d = float(sc)
                    if _small_int_double(d, &iv):
                        lp_int(cb, &lp, iv)
                    else:
                        txt = _dtext(d)
                        lp_raw(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(txt),
                               PyBytes_GET_SIZE(txt))
                lp_close(cb, &lp)
                self._str(b, cb.p, cb.n)
                return 17
            zl_open(cb, &zl)
            for m, sc in items:
                zl_str(cb, &zl, <const uint8_t *>PyBytes_AS_STRING(m), PyBytes_GET_SIZE(m))
                d = float(sc)
                if _small_int_double(d, &iv):
                    zl_int(cb, &zl, iv)
                else:
                    txt = _dtext(d)
                    zl_raw(cb, &zl, <const uint8_t *>PyBytes_AS_STRING(txt),
                           PyBytes_GET_SIZE(txt))
            zl_close(cb, &zl)
            self._str(b, cb.p, cb.n)
            return 12
        eb_len(b, cnt)
        if self.ver >= 8:
            for m, sc in (<dict>value).items():
                self._str(b, <const uint8_t *>PyBytes_AS_STRING(m), PyBytes_GET_SIZE(m))
                d = float(sc)
                eb_reserve(b, 8)
                memcpy(dbuf, &d, 8)
                eb_put(b, dbuf, 8)
            return 5
        for m, sc in (<dict>value).items():
            self._str(b, <const uint8_t *>PyBytes_AS_STRING(m), PyBytes_GET_SIZE(m))
            d = float(sc)
            if isinf(d):
                eb_byte(b, 254 if d > 0 else 255)
            else:
                txt = _dtext(d)
                eb_byte(b, <uint8_t>PyBytes_GET_SIZE(txt))
                eb_put(b, PyBytes_AS_STRING(txt), PyBytes_GET_SIZE(txt))
        return 3

    # -- hashes --

    cdef int _hash(self, EBuf *b, object key, object value, object fexp) except -1:
        cdef size_t cnt, ln
        cdef bint small = True
        cdef EBuf *cb = &self.cb
        cdef LP lp
        cdef ZL zl
        cdef int64_t minexp, e
        if not isinstance(value, dict):
            _fail_key(key, f"hash value must be a dict, not {type(value).__name__}")
        cnt = len(value)
        if cnt == 0:
            _fail_key(key, "empty hash")
        for f, v in (<dict>value).items():
            _bp(f, &ln, key, "hash field", self.max_str)
            if ln > 64:
                small = False
            _bp(v, &ln, key, "hash value", self.max_str)
            if ln > 64:
                small = False
        if fexp:
            if not isinstance(fexp, dict):
                _fail_key(key, "field_expires must be a dict")
            for f, e in (<dict>fexp).items():
                if f not in value:
                    _fail_key(key, f"field_expires names {f!r}, which is not a field")
                if not self.valkey and not 1 <= e <= 0xFFFFFFFFFFFF:
                    _fail_key(key, f"field TTL {e} of {f!r} is outside 1..2^48-1")
                if self.valkey and e == -1:
                    _fail_key(key, f"field TTL -1 of {f!r} is reserved (no TTL)")
            if not self.valkey and self.ver < 12:
                self._unsupported(key, "hash field TTLs",
                                  self._need("hash field TTLs", "RDB 12 or VALKEY"))
                fexp = None
        if fexp:
            if self.valkey:              # HASH_2 (22): field, value, int64 abs ms or -1
                eb_len(b, cnt)
                for f, v in (<dict>value).items():
                    self._str(b, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                    self._str(b, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
                    eb_i64(b, (<dict>fexp).get(f, -1))
                return 22
            minexp = min((<dict>fexp).values())
            if not self.plain and cnt <= 512 and small:      # 25: listpack of triplets
                # Redis keeps listpack-ex fields by TTL, fields without one last
                order = [kv[2] for kv in sorted(
                    [((0, fexp[f]) if f in fexp else (1, 0)) + (f,) for f in value])]
                eb_i64(b, minexp)
                cb.n = 0
                lp_open(cb, &lp)
                for f in order:
                    v = (<dict>value)[f]
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
                    lp_int(cb, &lp, (<dict>fexp).get(f, 0))
                lp_close(cb, &lp)
                self._str(b, cb.p, cb.n)
                return 25
            eb_i64(b, minexp)            # 24: ttl relative to minExpire (+1), 0 = none
            eb_len(b, cnt)
            for f, v in (<dict>value).items():
                e = (<dict>fexp).get(f, -1)
                eb_len(b, 0 if e < 0 else <uint64_t>(e - minexp + 1))
                self._str(b, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                self._str(b, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
            return 24
        if not self.plain and cnt <= 512 and small:
            cb.n = 0
            if self.ver >= 10:
                lp_open(cb, &lp)
                for f, v in (<dict>value).items():
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
                lp_close(cb, &lp)
                self._str(b, cb.p, cb.n)
                return 16
            zl_open(cb, &zl)
            for f, v in (<dict>value).items():
                zl_str(cb, &zl, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                zl_str(cb, &zl, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
            zl_close(cb, &zl)
            self._str(b, cb.p, cb.n)
            return 13
        eb_len(b, cnt)
        for f, v in (<dict>value).items():
            self._str(b, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
            self._str(b, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
        return 4

    # -- modules --

    cdef int _module(self, EBuf *b, object key, object value) except -1:
        if not isinstance(value, _model.ModuleValue):
            _fail_key(key, f"module value must be a ModuleValue, not {type(value).__name__}")
        raw = value.raw
        if not PyBytes_Check(raw) or PyBytes_GET_SIZE(raw) == 0:
            _fail_key(key, "module value raw must be non-empty bytes")
        eb_len(b, value.module_id)
        eb_put(b, PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
        return 7

    # -- streams (RDB_FORMAT §7) --

    cdef int _stream(self, EBuf *b, object key, object value) except -1:
        cdef EBuf *cb = &self.cb
        cdef LP lp
        cdef size_t i, nent, nf, nmf = 0, cnt
        cdef uint64_t ms, seq, pms = 0, pseq = 0, mms = 0, mseq = 0
        cdef bint same
        cdef int t = 15 if self.ver == 9 else (19 if self.ver == 10 else 21)
        if not isinstance(value, _model.Stream):
            _fail_key(key, f"stream value must be a Stream, not {type(value).__name__}")
        entries = value.entries
        nent = len(entries)
        # A node takes entries until it holds 100 or its listpack reaches
        # 4096 bytes; its master entry has the first entry's field names.
        # The master count is < 128, so it is a 1-byte listpack int patched
        # in when the node closes.
        cb.n = 0
        node_starts = []
        cnt = 0
        for i in range(nent):
            e = entries[i]
            ms, seq = e.id
            if i > 0 and (ms < pms or (ms == pms and seq <= pseq)):
                _fail_key(key, f"stream entry IDs must ascend ({ms}-{seq} after {pms}-{pseq})")
            pms = ms
            pseq = seq
            fields = e.fields
            for f, v in fields:
                _bp(f, &nf, key, "stream field", self.max_str)
                _bp(v, &nf, key, "stream value", self.max_str)
            if cnt and (cnt >= STREAM_NODE_MAX_ENTRIES
                        or cb.n + 1 - lp.start >= STREAM_NODE_MAX_BYTES):
                lp_close(cb, &lp)
                cb.p[lp.start + 6] = <uint8_t>cnt
                node_starts.append((mms, mseq, lp.start, cb.n))
                cnt = 0
            nf = len(fields)
            if cnt == 0:
                mms = ms
                mseq = seq
                mfields = tuple([fv[0] for fv in fields])
                nmf = nf
                lp_open(cb, &lp)
                lp_int(cb, &lp, 0)          # count, patched at close
                lp_int(cb, &lp, 0)          # deleted
                lp_int(cb, &lp, <int64_t>nmf)
                for f in mfields:
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                lp_int(cb, &lp, 0)
            same = nf == nmf
            if same:
                for x in range(nf):
                    if fields[x][0] != mfields[x]:
                        same = False
                        break
            lp_int(cb, &lp, 2 if same else 0)
            lp_int(cb, &lp, <int64_t>(ms - mms))
            lp_int(cb, &lp, <int64_t>(seq - mseq))
            if same:
                for f, v in fields:
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
                lp_int(cb, &lp, <int64_t>(nf + 3))
            else:
                lp_int(cb, &lp, <int64_t>nf)
                for f, v in fields:
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(f), PyBytes_GET_SIZE(f))
                    lp_str(cb, &lp, <const uint8_t *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
                lp_int(cb, &lp, <int64_t>(2 * nf + 4))
            cnt += 1
        if cnt:
            lp_close(cb, &lp)
            cb.p[lp.start + 6] = <uint8_t>cnt
            node_starts.append((mms, mseq, lp.start, cb.n))
        eb_len(b, len(node_starts))
        cdef uint8_t idb[16]
        cdef size_t s0, s1
        for (ms, seq, s0, s1) in node_starts:
            st64be(idb, ms)
            st64be(idb + 8, seq)
            self._str(b, idb, 16)
            self._str(b, cb.p + s0, s1 - s0)
        last = value.last_id
        eb_len(b, value.length)
        eb_len(b, last[0])
        eb_len(b, last[1])
        if t != 15:
            fid = value.first_id
            if fid is None:
                fid = entries[0].id if nent else (0, 0)
            mdel = value.max_deleted_id
            if mdel is None:
                mdel = (0, 0)
            added = value.entries_added
            if added is None:
                added = value.length
            eb_len(b, fid[0])
            eb_len(b, fid[1])
            eb_len(b, mdel[0])
            eb_len(b, mdel[1])
            eb_len(b, added)
        groups = value.groups
        eb_len(b, len(groups))
        for g in groups:
            self._pystr(b, g.name, key, "stream group name")
            eb_len(b, g.last_id[0])
            eb_len(b, g.last_id[1])
            if t != 15:
                er = g.entries_read
                eb_len(b, <uint64_t>(<int64_t>(-1 if er is None else er)))
            eb_len(b, len(g.pending))
            for pe in g.pending:
                eb_sid_raw(b, pe.id[0], pe.id[1])
                eb_i64(b, pe.delivery_time_ms)
                eb_len(b, pe.delivery_count)
            eb_len(b, len(g.consumers))
            in_pel = {pe.id for pe in g.pending} if g.consumers else None
            for c in g.consumers:
                for pid in c.pending:
                    if pid not in in_pel:
                        raise EncodeError(_pel_message(key, g.name, c.name, pid))
                self._pystr(b, c.name, key, "stream consumer name")
                eb_i64(b, c.seen_time_ms)
                if t == 21:
                    at = c.active_time_ms
                    eb_i64(b, c.seen_time_ms if at is None else at)
                eb_len(b, len(c.pending))
                for pid in c.pending:
                    eb_sid_raw(b, pid[0], pid[1])
        return t


cdef str _lib_name(bytes code):
    first = code.split(b"\n", 1)[0]
    name = first.partition(b"name=")[2].split()
    return name[0].decode(errors="replace") if name else "?"


cdef object _auxb(object v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v).encode()
    raise EncodeError(f"aux fields must be bytes or str, not {type(v).__name__}")


def _pel_message(key, group, consumer, pid) -> str:
    """Servers refuse a file whose consumer lists an ID its group's PEL lacks."""
    return (f"key {key!r}: stream group {group!r} consumer {consumer!r} has pending ID "
            f"{pid[0]}-{pid[1]} that is not in the group's pending entries list")


class RdbWriter:
    """Streams an RDB to a binary file object or a callable sink (docs/codec.md).

    Output is gathered into writes of about 1 MiB before it reaches the sink;
    `close()` writes the trailer and flushes. After an exception inside a
    `with` block no EOF is written.
    """

    def __init__(self, sink, **encoder_kwargs):
        if hasattr(sink, "write"):
            self._write = sink.write
            self._flush = getattr(sink, "flush", None)
        elif callable(sink):
            self._write = sink
            self._flush = None
        else:
            raise TypeError(f"sink must have .write() or be callable, got {type(sink).__name__}")
        self._enc = Encoder(**encoder_kwargs)
        self._chunks = []
        self._size = 0
        self._closed = False

    @property
    def encoder(self):
        return self._enc

    @property
    def dropped(self):
        return self._enc.dropped

    def _push(self, data):
        if data:
            self._chunks.append(data)
            self._size += len(data)
            if self._size >= (1 << 20):
                self._drain()

    def _drain(self):
        if self._chunks:
            self._write(b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0])
            self._chunks = []
            self._size = 0

    def begin(self, aux=None, functions=(), module_aux=()):
        self._push(self._enc.begin(aux, functions, module_aux))

    def write(self, entry):
        self._push(self._enc.write(entry))

    def function(self, code):
        self._push(self._enc.function(code))

    def resize_hint(self, db, db_size, expires_size):
        self._push(self._enc.resize_hint(db, db_size, expires_size))

    def close(self, module_aux_after=()):
        if self._closed:
            return
        if self._enc.state == 0:
            self.begin()
        self._push(self._enc.finish(module_aux_after))
        self._closed = True
        self._drain()
        if self._flush is not None:
            self._flush()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._drain()            # what was written so far, but never an EOF
            if self._flush is not None:
                self._flush()
        return False


def dump_payload(type_name, value, version, *, field_expires=None, plain=False,
                 compress=True) -> bytes:
    """A DUMP payload: type byte + value (as in an RDB of `version`) + u16 version + CRC64."""
    cdef Encoder enc = Encoder(version, plain=plain, compress=compress)
    cdef EBuf *b = &enc.out
    cdef int t
    enc.out.n = 0
    t = enc._value(b, None, type_name, value, field_expires, False)
    if t < 0:
        raise EncodeError(f"{type_name} cannot be dumped for version {version}")
    eb_reserve(b, 10)
    st16(b.p + b.n, <uint64_t>version)
    b.n += 2
    st64(b.p + b.n, rdbkit_crc64(0, b.p, b.n))
    b.n += 8
    return PyBytes_FromStringAndSize(<char *>b.p, b.n)


def lzf_compress(data):
    """LZF-compress data with rdbkit's own compressor, or None when that saves < 4 bytes."""
    cdef bytes d = bytes(data)
    cdef size_t n = PyBytes_GET_SIZE(d)
    cdef uint32_t *htab
    cdef size_t r
    if n < 5:
        return None
    out = PyBytes_FromStringAndSize(NULL, n - 4)
    htab = <uint32_t *>calloc(1 << RDBKIT_LZF_HLOG, sizeof(uint32_t))
    if htab == NULL:
        raise MemoryError()
    r = rdbkit_lzf_compress(<const uint8_t *>PyBytes_AS_STRING(d), n,
                            <uint8_t *>PyBytes_AS_STRING(out), n - 4, htab)
    free(htab)
    if r == 0:
        return None
    return out[:r]


def parse_dump_payload(payload, *, max_string_len=DEFAULT_MAX_STRING_LEN,
                       max_collection_len=DEFAULT_MAX_COLLECTION_LEN,
                       max_buffer_size=DEFAULT_MAX_BUFFER_SIZE):
    """Parse a DUMP payload: length, CRC64, version, then the value (model.DumpValue).

    The value is read by the decoder's own value parsers (a Decoder over the
    payload's value bytes, with the given limits); offsets are payload offsets.
    """
    cdef Decoder d
    cdef Cur *c
    cdef size_t n, vend
    cdef int t
    cdef uint64_t stored, computed
    payload = bytes(payload)
    n = PyBytes_GET_SIZE(payload)
    if max_string_len > max_buffer_size:
        raise ValueError(f"max_string_len {max_string_len} exceeds max_buffer_size {max_buffer_size}")
    if n > max_buffer_size:
        raise LimitExceededError(
            f"DUMP payload of {n} bytes exceeds max_buffer_size {max_buffer_size}", offset=0)
    if n < 10:
        raise DecodeError(f"DUMP payload of {n} bytes is shorter than the 10-byte footer", offset=0)
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(payload)
    stored = ld64(p + n - 8)
    computed = rdbkit_crc64(0, p, n - 8)
    if stored != computed:
        raise ChecksumError(
            f"DUMP payload checksum mismatch: stored 0x{stored:016x}, computed 0x{computed:016x}",
            offset=n - 8)
    version = ld16(p + n - 10)
    if not (1 <= version <= 12 or version == 80):
        raise UnsupportedVersionError(f"unsupported DUMP payload version {version}", offset=n - 10)
    vend = n - 10
    t = p[0]
    valkey = version >= 80
    d = Decoder(max_string_len=max_string_len, max_collection_len=max_collection_len,
                max_buffer_size=max_buffer_size)
    d.feed(payload[:vend])
    d.state = ST_BODY
    d.valkey = valkey
    d.ver = version
    d._setup(True)
    c = &d.c
    d._unsupported(t, 0)
    if t > 26 or _TNAME[t] == NULL or (valkey and t > 22):
        raise DecodeError(f"unknown type byte {t}", offset=0)
    c.pos = 1
    c.item_start = 0
    try:
        value = d._value(t)
    except _Short:      # cannot happen with final=True; keep the error typed anyway
        raise TruncatedError("DUMP payload value is truncated", offset=vend)
    finally:
        c.key = NULL
    if c.pos != vend:
        raise DecodeError(f"{vend - c.pos} bytes left between the value and the footer",
                          offset=c.pos)
    fe = d.box.pop() if d.box else None
    enc = <object>_ENAME[t]
    return _model.DumpValue(<object>_TNAME[t], value, version, fe, enc)
