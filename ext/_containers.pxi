# Walkers for the compact containers held in RDB strings (RDB_FORMAT §6):
# ziplist and listpack share one element iterator; intset and zipmap have
# their own loops. Everything is bounds-checked against the container; a
# problem sets it.err and the caller raises DecodeError at the offset of the
# RDB string holding the container. Included by _codec.pyx.

cdef enum:
    K_ZIPLIST = 0
    K_LISTPACK = 1

# what to build from the elements
cdef enum:
    M_NONE = 0      # validate only
    M_LIST = 1      # append to a list
    M_SET = 2       # add to a set
    M_HASH = 3      # field, value pairs into a dict
    M_ZSET = 4      # member, score pairs into a dict of floats
    M_HASH_TTL = 5  # field, value, ttl triplets (dict + expiry dict)

cdef uint64_t U64_UNKNOWN = 0xFFFFFFFFFFFFFFFFULL
cdef int64_t HFE_MAX = 0xFFFFFFFFFFFF   # largest hash field expireAt Redis accepts (2^48 - 1)


cdef struct CIter:
    const uint8_t *p
    size_t n
    size_t pos
    size_t stop        # index of the 0xFF terminator (n - 1)
    uint64_t declared  # element count from the header, U64_UNKNOWN if not stated
    uint64_t count
    int kind
    const char *err
    size_t err_pos


cdef struct Elem:
    const uint8_t *s
    size_t n
    int64_t ival
    bint is_int


cdef inline int ci_init(CIter *it, int kind, const uint8_t *p, size_t n) noexcept nogil:
    it.p = p
    it.n = n
    it.kind = kind
    it.count = 0
    it.err = NULL
    it.err_pos = 0
    if kind == K_ZIPLIST:
        if n < 11:
            it.err = "shorter than its 11-byte minimum"
            return -1
        if ld32(p) != n:
            it.err = "header total bytes differ from the string length"
            return -1
        it.declared = ld16(p + 8)
        if it.declared == 0xFFFF:
            it.declared = U64_UNKNOWN
        it.pos = 10
    else:
        if n < 7:
            it.err = "shorter than its 7-byte minimum"
            return -1
        if ld32(p) != n:
            it.err = "header total bytes differ from the string length"
            return -1
        it.declared = ld16(p + 4)
        if it.declared == 0xFFFF:
            it.declared = U64_UNKNOWN
        it.pos = 6
    it.stop = n - 1
    if p[n - 1] != 0xFF:
        it.err = "missing 0xFF terminator"
        it.err_pos = n - 1
        return -1
    return 0


cdef inline int _ci_end(CIter *it) noexcept nogil:
    if it.declared != U64_UNKNOWN and it.declared != it.count:
        it.err = "element count differs from the header"
        it.err_pos = it.pos
        return -1
    return 0


cdef inline int ci_next(CIter *it, Elem *e) noexcept nogil:
    """Next element: 1 = got one, 0 = clean end, -1 = corrupt (it.err set)."""
    cdef size_t pos = it.pos
    cdef size_t stop = it.stop
    cdef const uint8_t *p = it.p
    cdef uint8_t b
    cdef size_t q, hdr, room, ln, elen, blen
    cdef uint32_t u
    if pos == stop:
        return _ci_end(it)
    b = p[pos]
    if b == 0xFF:
        it.err = "0xFF terminator before the end"
        it.err_pos = pos
        return -1
    room = stop - pos
    if it.kind == K_ZIPLIST:
        # prevlen: 1 byte, or 0xFE + u32
        if b == 0xFE:
            q = 5
        else:
            q = 1
        if q >= room:
            it.err = "entry overruns the ziplist"
            it.err_pos = pos
            return -1
        b = p[pos + q]
        room -= q
        q += pos          # index of the encoding byte
        e.is_int = b >= 0xC0
        if b < 0x40:
            hdr = 1
            ln = b
        elif b < 0x80:
            hdr = 2
            if room < 2:
                it.err = "entry overruns the ziplist"
                it.err_pos = pos
                return -1
            ln = ((<size_t>b & 0x3f) << 8) | p[q + 1]
        elif b == 0x80:
            hdr = 5
            if room < 5:
                it.err = "entry overruns the ziplist"
                it.err_pos = pos
                return -1
            ln = ld32be(p + q + 1)
        elif b < 0xC0:
            it.err = "bad ziplist entry encoding"
            it.err_pos = q
            return -1
        else:
            hdr = 1
            if b == 0xC0:
                ln = 2
            elif b == 0xD0:
                ln = 4
            elif b == 0xE0:
                ln = 8
            elif b == 0xF0:
                ln = 3
            elif b == 0xFE:
                ln = 1
            elif 0xF1 <= b <= 0xFD:
                ln = 0
            else:
                it.err = "bad ziplist entry encoding"
                it.err_pos = q
                return -1
        if ln > room - hdr:
            it.err = "entry overruns the ziplist"
            it.err_pos = pos
            return -1
        q += hdr          # data
        if e.is_int:
            if b == 0xC0:
                e.ival = <int16_t>ld16(p + q)
            elif b == 0xD0:
                e.ival = <int32_t>ld32(p + q)
            elif b == 0xE0:
                e.ival = <int64_t>ld64(p + q)
            elif b == 0xF0:
                u = <uint32_t>p[q] | (<uint32_t>p[q + 1] << 8) | (<uint32_t>p[q + 2] << 16)
                e.ival = (<int32_t>(u << 8)) >> 8
            elif b == 0xFE:
                e.ival = <int8_t>p[q]
            else:
                e.ival = (b & 0x0F) - 1
        else:
            e.s = p + q
            e.n = ln
        it.pos = q + ln
        it.count += 1
        return 1
    # listpack
    if b < 0x80:
        e.is_int = True
        e.ival = b
        elen = 1
    elif b < 0xC0:
        e.is_int = False
        ln = b & 0x3f
        hdr = 1
        elen = 1 + ln
        if ln >= room:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        e.s = p + pos + 1
        e.n = ln
    elif b < 0xE0:
        if room < 2:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        u = ((<uint32_t>b & 0x1f) << 8) | p[pos + 1]
        e.is_int = True
        e.ival = <int64_t>u - 8192 if u >= 4096 else <int64_t>u
        elen = 2
    elif b < 0xF0:
        if room < 2:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        ln = ((<size_t>b & 0x0f) << 8) | p[pos + 1]
        if ln > room - 2:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        e.is_int = False
        e.s = p + pos + 2
        e.n = ln
        elen = 2 + ln
    elif b == 0xF0:
        if room < 5:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        ln = ld32(p + pos + 1)
        if ln > room - 5:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        e.is_int = False
        e.s = p + pos + 5
        e.n = ln
        elen = 5 + ln
    else:
        if b == 0xF1:
            elen = 3
        elif b == 0xF2:
            elen = 4
        elif b == 0xF3:
            elen = 5
        elif b == 0xF4:
            elen = 9
        else:
            it.err = "bad listpack entry encoding"
            it.err_pos = pos
            return -1
        if elen > room:
            it.err = "entry overruns the listpack"
            it.err_pos = pos
            return -1
        e.is_int = True
        if b == 0xF1:
            e.ival = <int16_t>ld16(p + pos + 1)
        elif b == 0xF2:
            u = <uint32_t>p[pos + 1] | (<uint32_t>p[pos + 2] << 8) | (<uint32_t>p[pos + 3] << 16)
            e.ival = (<int32_t>(u << 8)) >> 8
        elif b == 0xF3:
            e.ival = <int32_t>ld32(p + pos + 1)
        else:
            e.ival = <int64_t>ld64(p + pos + 1)
    # backlen: 1..5 bytes, sized by the entry length
    if elen < 128:
        blen = 1
    elif elen < 16384:
        blen = 2
    elif elen < 2097152:
        blen = 3
    elif elen < 268435456:
        blen = 4
    else:
        blen = 5
    if elen + blen > room:
        it.err = "entry overruns the listpack"
        it.err_pos = pos
        return -1
    # backlen: most significant 7-bit group first; every byte but the first has bit 7 set
    q = pos + elen
    b = p[q]
    if b & 0x80:
        it.err = "malformed backlen"
        it.err_pos = q
        return -1
    ln = b
    for hdr in range(1, blen):
        b = p[q + hdr]
        if not (b & 0x80):
            it.err = "malformed backlen"
            it.err_pos = q
            return -1
        ln = (ln << 7) | (b & 0x7F)
    if ln != elen:
        it.err = "backlen differs from the entry length"
        it.err_pos = q
        return -1
    it.pos = pos + elen + blen
    it.count += 1
    return 1


cdef inline object elem_bytes(Elem *e):
    if e.is_int:
        return int_bytes(e.ival)
    return PyBytes_FromStringAndSize(<const char *>e.s, e.n)


cdef str _kind_name(int kind):
    return "ziplist" if kind == K_ZIPLIST else "listpack"


cdef int _cfail(Cur *c, CIter *it, size_t at, str what) except -1:
    return _fail(c, DecodeError,
                 f"corrupt {_kind_name(it.kind)}: {what} (entry {it.count}, byte {it.err_pos} of the container)",
                 c.abs0 + at)


cdef int walk(Cur *c, int kind, SView *v, int mode, int arity, object out, object out2) except -1:
    """Walk a ziplist/listpack held in the string v, building per mode.

    arity is 1 (list/set), 2 (pairs) or 3 (hash-with-TTL triplets). An empty
    container, a count not a multiple of arity, or any corrupt byte raises
    DecodeError at the offset of the string holding the container.
    """
    cdef CIter it
    cdef Elem e, f, g
    cdef int r
    cdef object k, val, sc
    if c.skim:
        return 0
    if ci_init(&it, kind, v.p, v.n) < 0:
        return _cfail(c, &it, v.at, it.err.decode())
    while True:
        r = ci_next(&it, &e)
        if r == 0:
            break
        if r < 0:
            return _cfail(c, &it, v.at, it.err.decode())
        if arity >= 2:
            r = ci_next(&it, &f)
            if r < 0:
                return _cfail(c, &it, v.at, it.err.decode())
            if r == 0:
                return _cfail(c, &it, v.at, "odd number of elements in a pair container")
        if arity == 3:
            r = ci_next(&it, &g)
            if r < 0:
                return _cfail(c, &it, v.at, it.err.decode())
            if r == 0:
                return _cfail(c, &it, v.at, "element count is not a multiple of 3 (field, value, ttl)")
            if not g.is_int:
                return _cfail(c, &it, v.at, "field TTL is not an integer")
            if g.ival < 0 or g.ival > HFE_MAX:
                return _cfail(c, &it, v.at, f"hash field expiry {g.ival} outside 0..2^48-1")
        if mode == M_LIST:
            PyList_Append(out, elem_bytes(&e))
        elif mode == M_SET:
            PySet_Add(out, elem_bytes(&e))
        elif mode == M_HASH:
            PyDict_SetItem(out, elem_bytes(&e), elem_bytes(&f))
        elif mode == M_ZSET:
            if f.is_int:
                sc = PyFloat_FromDouble(<double>f.ival)
            else:
                sc = parse_float_bytes(f.s, f.n)
                if sc is None:
                    return _cfail(c, &it, v.at, f"score {PyBytes_FromStringAndSize(<const char *>f.s, f.n)!r} is not a number")
            PyDict_SetItem(out, elem_bytes(&e), sc)
        elif mode == M_HASH_TTL:
            k = elem_bytes(&e)
            PyDict_SetItem(out, k, elem_bytes(&f))
            if g.ival != 0:
                PyDict_SetItem(out2, k, g.ival)
            elif k in out2:
                del out2[k]
    if it.count == 0:
        return _fail(c, DecodeError, f"empty {_kind_name(kind)}", c.abs0 + v.at)
    return 0


cdef int walk_intset(Cur *c, SView *v, object out) except -1:
    """Intset (RDB_FORMAT §6): encoding 2/4/8, count, strictly ascending ints."""
    cdef const uint8_t *p = v.p
    cdef uint32_t enc, cnt, i
    cdef int64_t x, prev = 0
    if c.skim:
        return 0
    if v.n < 8:
        return _fail(c, DecodeError, "corrupt intset: shorter than its 8-byte header", c.abs0 + v.at)
    enc = ld32(p)
    cnt = ld32(p + 4)
    if enc != 2 and enc != 4 and enc != 8:
        return _fail(c, DecodeError, f"corrupt intset: encoding {enc} is not 2, 4 or 8", c.abs0 + v.at)
    if <uint64_t>v.n != 8 + <uint64_t>cnt * enc:
        return _fail(c, DecodeError,
                     f"corrupt intset: {cnt} members of {enc} bytes do not fill {v.n} bytes",
                     c.abs0 + v.at)
    if cnt == 0:
        return _fail(c, DecodeError, "empty intset", c.abs0 + v.at)
    p += 8
    for i in range(cnt):
        if enc == 2:
            x = <int16_t>ld16(p + 2 * i)
        elif enc == 4:
            x = <int32_t>ld32(p + 4 * i)
        else:
            x = <int64_t>ld64(p + 8 * i)
        if i > 0 and x <= prev:
            return _fail(c, DecodeError, f"corrupt intset: member {i} is not above the previous one",
                         c.abs0 + v.at)
        prev = x
        if mode_build(out):
            PySet_Add(out, int_bytes(x))
    return 0


cdef inline bint mode_build(object out):
    return out is not None


cdef int walk_zipmap(Cur *c, SView *v, object out) except -1:
    """Zipmap (RDB_FORMAT §6): zmlen, {len key len free value pad}*, 0xFF as the last byte.

    zmlen below 254 must equal the number of pairs.
    """
    cdef const uint8_t *p = v.p
    cdef size_t n = v.n
    cdef size_t last, pos = 1
    cdef size_t sz[2]
    cdef size_t at[2]
    cdef size_t fr
    cdef uint8_t b
    cdef int part
    cdef size_t count = 0
    if c.skim:
        return 0
    if n < 2:
        return _fail(c, DecodeError, "corrupt zipmap: shorter than 2 bytes", c.abs0 + v.at)
    last = n - 1
    while True:
        b = p[pos]
        if b == 0xFF:
            if pos != last:
                return _fail(c, DecodeError, f"corrupt zipmap: terminator at byte {pos} before the end",
                             c.abs0 + v.at)
            break
        for part in range(2):
            if pos >= last:
                return _fail(c, DecodeError, f"corrupt zipmap: pair {count} overruns", c.abs0 + v.at)
            b = p[pos]
            if b < 254:
                sz[part] = b
                pos += 1
            elif b == 254:
                if last - pos < 5:
                    return _fail(c, DecodeError, f"corrupt zipmap: pair {count} overruns", c.abs0 + v.at)
                sz[part] = ld32(p + pos + 1)
                pos += 5
            else:
                return _fail(c, DecodeError, f"corrupt zipmap: pair {count} has length byte 255",
                             c.abs0 + v.at)
            fr = 0
            if part == 1:
                if pos >= last:
                    return _fail(c, DecodeError, f"corrupt zipmap: pair {count} overruns", c.abs0 + v.at)
                fr = p[pos]
                pos += 1
            if sz[part] > last - pos or fr > last - pos - sz[part]:
                return _fail(c, DecodeError, f"corrupt zipmap: pair {count} overruns", c.abs0 + v.at)
            at[part] = pos
            pos += sz[part] + fr
        if out is not None:
            PyDict_SetItem(out, PyBytes_FromStringAndSize(<const char *>p + at[0], sz[0]),
                           PyBytes_FromStringAndSize(<const char *>p + at[1], sz[1]))
        count += 1
    if p[0] < 254 and p[0] != count:
        return _fail(c, DecodeError, f"corrupt zipmap: header counts {p[0]} pairs, found {count}",
                     c.abs0 + v.at)
    if count == 0:
        return _fail(c, DecodeError, "empty zipmap", c.abs0 + v.at)
    return 0
