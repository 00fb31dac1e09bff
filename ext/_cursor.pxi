# The checked cursor every read goes through (included by _codec.pyx).
#
# A Cur is a window over the decoder's buffer: b[pos:end] is what may be read.
# `end` is a *virtual* end, min(real end, item start + max_buffer_size), so a
# read that would need more than max_buffer_size bytes from the start of the
# item takes the slow path, where it becomes LimitExceededError whatever is
# buffered. Any read past the end either asks for more data (raises _Short,
# recording how many bytes from the item start the read needed) or, when no
# more data will come (`final`), raises TruncatedError at the read's start.


class _Short(Exception):
    """Internal: the buffered data ran out mid-item; retry when more arrived."""


cdef struct Cur:
    const uint8_t *b          # buffer base
    size_t pos                # next byte to read
    size_t end                # virtual end (see above)
    size_t real_end           # end of the buffered bytes
    uint64_t abs0             # absolute file offset of b[0]
    size_t item_start         # index of the current item's first byte
    uint64_t need             # on _Short: bytes needed from item_start
    uint64_t max_buffer_size
    uint64_t max_string_len
    uint64_t max_collection_len
    bint final                # no more data will arrive
    bint values               # build Python values (False: validate only)
    bint skim                 # only find the item's extent: no LZF, no container walks
    uint8_t *scratch          # LZF output for views (grown on demand)
    size_t scratch_cap
    PyObject *key             # borrowed: current key for messages, or NULL


cdef str _ctx(Cur *c):
    if c.key == NULL:
        return ""
    return f" (key {(<object>c.key)!r})"


cdef int _fail(Cur *c, object cls, str msg, uint64_t offset) except -1:
    raise cls(msg + _ctx(c), offset=offset)


cdef int _short(Cur *c, uint64_t n, const char *what) except -1:
    """Slow path of every read of n bytes at c.pos that does not fit in the window."""
    cdef uint64_t rel = c.pos - c.item_start
    cdef uint64_t have = c.real_end - c.pos if c.real_end > c.pos else 0
    if n > c.max_buffer_size or rel + n > c.max_buffer_size:
        raise LimitExceededError(
            f"item needs more than max_buffer_size {c.max_buffer_size} bytes "
            f"(reading {what.decode()}: {n} bytes at item byte {rel})" + _ctx(c),
            offset=c.abs0 + c.item_start)
    if c.final:
        raise TruncatedError(
            f"unexpected end of data reading {what.decode()}: needs {n} bytes, "
            f"{have} remain" + _ctx(c), offset=c.abs0 + c.pos)
    c.need = rel + n
    raise _Short()


cdef inline int c_need(Cur *c, size_t n, const char *what) except -1:
    if n > c.end - c.pos:
        return _short(c, n, what)
    return 0


cdef inline int c_u8(Cur *c, const char *what) except -1:
    if c.pos >= c.end:
        _short(c, 1, what)
    c.pos += 1
    return c.b[c.pos - 1]


cdef inline uint16_t ld16(const uint8_t *p) noexcept nogil:
    return <uint16_t>p[0] | (<uint16_t>p[1] << 8)


cdef inline uint32_t ld32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline uint64_t ld64(const uint8_t *p) noexcept nogil:
    return <uint64_t>ld32(p) | (<uint64_t>ld32(p + 4) << 32)


cdef inline uint32_t ld32be(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8)
            | <uint32_t>p[3])


cdef inline uint64_t ld64be(const uint8_t *p) noexcept nogil:
    return (<uint64_t>ld32be(p) << 32) | <uint64_t>ld32be(p + 4)


cdef inline int c_i64(Cur *c, int64_t *out, const char *what) except -1:
    c_need(c, 8, what)
    out[0] = <int64_t>ld64(c.b + c.pos)
    c.pos += 8
    return 0


cdef int c_len(Cur *c, uint64_t *out, const char *what) except -1:
    """A length (RDB_FORMAT §5); the special-encoding form is an error here."""
    cdef size_t at = c.pos
    cdef uint8_t t
    if at >= c.end:
        _short(c, 1, what)
    t = c.b[at]
    if t < 0x40:
        out[0] = t
        c.pos = at + 1
        return 0
    if t < 0x80:
        c_need(c, 2, what)
        out[0] = ((<uint64_t>t & 0x3f) << 8) | c.b[at + 1]
        c.pos = at + 2
        return 0
    if t == 0x80:
        c_need(c, 5, what)
        out[0] = ld32be(c.b + at + 1)
        c.pos = at + 5
        return 0
    if t == 0x81:
        c_need(c, 9, what)
        out[0] = ld64be(c.b + at + 1)
        c.pos = at + 9
        return 0
    return _fail(c, DecodeError, f"bad length byte 0x{t:02x} reading {what.decode()}",
                 c.abs0 + at)


cdef int c_count(Cur *c, uint64_t *out, const char *what) except -1:
    """A collection count: a length checked against max_collection_len."""
    cdef size_t at = c.pos
    c_len(c, out, what)
    if out[0] > c.max_collection_len:
        _fail(c, LimitExceededError,
              f"{what.decode()} {out[0]} exceeds max_collection_len {c.max_collection_len}",
              c.abs0 + at)
    return 0


cdef int c_room(Cur *c, uint64_t count, size_t min_each) except -1:
    """Whether count items of at least min_each bytes fit in the window.

    Returns 1 when they do (so count may size an allocation). Otherwise, while
    more data can still arrive, asks for it (raises _Short); when it cannot,
    returns 0 and the caller reads item by item without preallocating, so the
    exact failing read reports the error.
    """
    cdef uint64_t avail = c.end - c.pos
    cdef uint64_t rel, want
    if count <= avail / min_each:
        return 1
    if c.final or c.end < c.real_end or c.end - c.item_start >= c.max_buffer_size:
        return 0
    rel = c.pos - c.item_start
    if count > (c.max_buffer_size - rel) / min_each:
        want = c.max_buffer_size
    else:
        want = rel + count * min_each
    c.need = want
    raise _Short()


cdef int c_scratch(Cur *c, size_t n) except -1:
    cdef size_t cap
    cdef uint8_t *p
    if n <= c.scratch_cap:
        return 0
    cap = c.scratch_cap * 2
    if cap < n:
        cap = n
    if cap < 256:
        cap = 256
    p = <uint8_t *>realloc(c.scratch, cap)
    if p == NULL:
        raise MemoryError()
    c.scratch = p
    c.scratch_cap = cap
    return 0


# String header kinds
cdef enum:
    S_RAW = 0
    S_INT = 1
    S_LZF = 2


cdef struct SHead:
    int kind
    size_t at          # index of the string's first byte
    size_t n           # raw: payload length (payload at c.b + pos); LZF: ulen
    size_t clen        # LZF: compressed length (payload at c.b + pos)
    int64_t ival       # int-encoded value


cdef int c_shead(Cur *c, SHead *h, const char *what) except -1:
    """Read a string header; on return c.pos is at the payload (which is in the window)."""
    cdef size_t at = c.pos
    cdef uint8_t t
    cdef uint64_t n, clen, ulen
    h.at = at
    if at >= c.end:
        _short(c, 1, what)
    t = c.b[at]
    if t < 0xC0:
        c_len(c, &n, what)
        if n > c.max_string_len:
            _fail(c, LimitExceededError,
                  f"{what.decode()} length {n} exceeds max_string_len {c.max_string_len}",
                  c.abs0 + at)
        c_need(c, <size_t>n, what)
        h.kind = S_RAW
        h.n = <size_t>n
        return 0
    t &= 0x3f
    if t <= 2:
        # the encoding byte and the integer are separate reads (truncation offsets)
        c.pos = at + 1
        h.kind = S_INT
        if t == 0:
            c_need(c, 1, what)
            h.ival = <int8_t>c.b[at + 1]
            c.pos = at + 2
        elif t == 1:
            c_need(c, 2, what)
            h.ival = <int16_t>ld16(c.b + at + 1)
            c.pos = at + 3
        else:
            c_need(c, 4, what)
            h.ival = <int32_t>ld32(c.b + at + 1)
            c.pos = at + 5
        return 0
    if t == 3:
        c.pos = at + 1
        c_len(c, &clen, "LZF compressed length")
        if clen > c.max_string_len:
            _fail(c, LimitExceededError,
                  f"LZF compressed length {clen} exceeds max_string_len {c.max_string_len}",
                  c.abs0 + at)
        c_len(c, &ulen, "LZF uncompressed length")
        if ulen > c.max_string_len:
            _fail(c, LimitExceededError,
                  f"LZF length {ulen} exceeds max_string_len {c.max_string_len}",
                  c.abs0 + at)
        if ulen > 88 * clen:
            _fail(c, LimitExceededError,
                  f"LZF length {ulen} is more than 88 x compressed length {clen}",
                  c.abs0 + at)
        c_need(c, <size_t>clen, "LZF data")
        h.kind = S_LZF
        h.n = <size_t>ulen
        h.clen = <size_t>clen
        return 0
    return _fail(c, DecodeError, f"unknown string encoding 0x{t | 0xC0:02x} reading {what.decode()}",
                 c.abs0 + at)


cdef int _lzf_into(Cur *c, SHead *h, uint8_t *out) except -1:
    """Decompress the LZF payload at c.pos into out[0:h.n]; advances c.pos."""
    cdef size_t err_at = 0
    cdef ptrdiff_t r = rdbkit_lzf_decompress(c.b + c.pos, h.clen, out, h.n, &err_at)
    if r < 0:
        if r == -RDBKIT_LZF_E_BACKREF:
            why = "back-reference before output start"
        elif r == -RDBKIT_LZF_E_OUTPUT:
            why = f"output longer than the stated {h.n} bytes"
        else:
            why = "token runs past the compressed data"
        _fail(c, DecodeError, f"corrupt LZF data: {why} at compressed byte {err_at}",
              c.abs0 + h.at)
    if <size_t>r != h.n:
        _fail(c, DecodeError, f"corrupt LZF data: output is {r} bytes, stated {h.n}",
              c.abs0 + h.at)
    c.pos += h.clen
    return 0


cdef char _DIGITS2[201]


def _init_digits():
    cdef bytes pairs = b"".join(b"%02d" % i for i in range(100))
    memcpy(_DIGITS2, <const char *>pairs, 200)


_init_digits()


cdef object int_bytes(int64_t v):
    """Decimal text of v as bytes (two digits per division)."""
    cdef char buf[24]
    cdef char *p = buf + 24
    cdef uint64_t u
    cdef unsigned r
    cdef bint neg = v < 0
    if 0 <= v < 10:
        buf[0] = <char>(48 + v)
        return PyBytes_FromStringAndSize(buf, 1)
    if neg:
        u = (~(<uint64_t>v)) + 1
    else:
        u = <uint64_t>v
    while u >= 100:
        r = <unsigned>(u % 100)
        u = u // 100
        p -= 2
        p[0] = _DIGITS2[2 * r]
        p[1] = _DIGITS2[2 * r + 1]
    if u >= 10:
        p -= 2
        p[0] = _DIGITS2[2 * u]
        p[1] = _DIGITS2[2 * u + 1]
    else:
        p -= 1
        p[0] = <char>(48 + u)
    if neg:
        p -= 1
        p[0] = 45
    return PyBytes_FromStringAndSize(p, buf + 24 - p)


cdef object c_str(Cur *c, const char *what):
    """Read a string as bytes (int-encoded -> decimal text, LZF -> decompressed)."""
    cdef SHead h
    c_shead(c, &h, what)
    if h.kind == S_RAW:
        c.pos += h.n
        return PyBytes_FromStringAndSize(<const char *>c.b + c.pos - h.n, h.n)
    if h.kind == S_INT:
        return int_bytes(h.ival)
    out = PyBytes_FromStringAndSize(NULL, h.n)
    _lzf_into(c, &h, <uint8_t *>PyBytes_AS_STRING(out))
    return out


cdef int c_skip_str(Cur *c, const char *what) except -1:
    """Read and validate a string without building it."""
    cdef SHead h
    c_shead(c, &h, what)
    if h.kind == S_RAW:
        c.pos += h.n
    elif h.kind == S_LZF:
        if c.skim:
            c.pos += h.clen
            return 0
        c_scratch(c, h.n)
        _lzf_into(c, &h, c.scratch)
    return 0


cdef struct SView:
    const uint8_t *p
    size_t n
    size_t at          # index of the string's first byte (container error offset)


cdef int c_view(Cur *c, SView *v, const char *what) except -1:
    """Read a string as contiguous bytes (LZF into the scratch buffer: valid until the next view)."""
    cdef SHead h
    c_shead(c, &h, what)
    v.at = h.at
    if h.kind == S_RAW:
        v.p = c.b + c.pos
        v.n = h.n
        c.pos += h.n
        return 0
    if h.kind == S_LZF:
        if c.skim:            # extent only: v.p must not be read
            c.pos += h.clen
            v.p = c.b
            v.n = h.n
            return 0
        c_scratch(c, h.n)
        _lzf_into(c, &h, c.scratch)
        v.p = c.scratch
        v.n = h.n
        return 0
    # an int-encoded string where a container is expected: render it so the
    # container check reports it as corrupt
    c_scratch(c, 24)
    s = int_bytes(h.ival)
    memcpy(c.scratch, PyBytes_AS_STRING(s), len(s))
    v.p = c.scratch
    v.n = len(s)
    return 0


cdef double _POW10[23]
_POW10[0] = 1.0
for _i in range(1, 23):
    _POW10[_i] = _POW10[_i - 1] * 10.0


def _fill_pow5_tables():
    """Truncated 128-bit normalized mantissas of 5^q, q in [-342, 308], from exact ints."""
    for q in range(-342, 309):
        if q >= 0:
            v = 5 ** q
            bl = v.bit_length()
            v = v << (128 - bl) if bl <= 128 else v >> (bl - 128)
        else:
            d = 5 ** (-q)
            v = (1 << (d.bit_length() + 127)) // d
        rdbkit_ff_set(q, v >> 64, v & 0xFFFFFFFFFFFFFFFF)


_fill_pow5_tables()


cdef object parse_float_bytes(const uint8_t *p, size_t n):
    """A score's text as a float, or None when it is not a number.

    Accepted: [+-] digits [. digits] [e[+-]digits] (or .digits), and
    inf / infinity / nan in any case with an optional sign; no whitespace or
    underscores (the same grammar as the Python twin's _SCORE_RE). Values with
    at most 2^53 as decimal mantissa and a power of ten up to 22 are computed
    exactly (one correctly rounded operation, Clinger's fast path); others go
    through CPython's correctly rounded parser, so results equal float(text).
    """
    cdef char buf[48]
    cdef size_t i = 0, digits = 0, sig = 0
    cdef uint8_t ch
    cdef uint64_t mant = 0
    cdef int64_t exp10 = 0, e = 0
    cdef bint neg = False, eneg = False, fast = True
    cdef double d
    cdef const char *txt
    if n == 0:
        return None
    ch = p[0]
    if ch == 43 or ch == 45:
        neg = ch == 45
        i = 1
    # integer part
    while i < n and 48 <= p[i] <= 57:
        if mant or p[i] != 48:
            if sig < 19:
                mant = mant * 10 + (p[i] - 48)
            else:
                exp10 += 1
                fast = False
            sig += 1
        i += 1
        digits += 1
    if i < n and p[i] == 46:
        i += 1
        while i < n and 48 <= p[i] <= 57:
            if mant or p[i] != 48:
                if sig < 19:
                    mant = mant * 10 + (p[i] - 48)
                    exp10 -= 1
                else:
                    fast = False
                sig += 1
            else:
                exp10 -= 1
            i += 1
            digits += 1
    if digits == 0:
        return _special_float(p, n)
    if i < n and (p[i] == 101 or p[i] == 69):
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            eneg = p[i] == 45
            i += 1
        if i >= n or not (48 <= p[i] <= 57):
            return None
        while i < n and 48 <= p[i] <= 57:
            if e < 100000:
                e = e * 10 + (p[i] - 48)
            i += 1
        exp10 += -e if eneg else e
    if i != n:
        return None
    if fast and mant <= 9007199254740992 and -22 <= exp10 <= 22:
        d = <double>mant
        if exp10 >= 0:
            d = d * _POW10[exp10]
        else:
            d = d / _POW10[-exp10]
        return PyFloat_FromDouble(-d if neg else d)
    if fast and rdbkit_ff_compute(mant, exp10, neg, &d):
        return PyFloat_FromDouble(d)
    if n < 48:
        memcpy(buf, p, n)
        buf[n] = 0
        txt = buf
    else:
        tmp = PyBytes_FromStringAndSize(<const char *>p, n)   # NUL-terminated
        txt = PyBytes_AS_STRING(tmp)
    d = PyOS_string_to_double(txt, NULL, NULL)
    if d == -1.0 and PyErr_Occurred():
        PyErr_Clear()
        return None
    return PyFloat_FromDouble(d)


cdef object _special_float(const uint8_t *p, size_t n):
    """inf / infinity / nan with an optional sign, any case; else None."""
    if n > 9:
        return None
    t = PyBytes_FromStringAndSize(<const char *>p, n).lower()
    if t[:1] in (b"+", b"-"):
        t = t[1:]
    if t in (b"inf", b"infinity", b"nan"):
        return float(PyBytes_FromStringAndSize(<const char *>p, n))
    return None
