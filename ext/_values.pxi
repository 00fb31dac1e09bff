# Value readers by type byte (RDB_FORMAT §4, §7, §8, §9). Included by _codec.pyx.
#
# Each reader consumes exactly the value's bytes. With c.values False the
# same walk and checks run but no Python value is built (None is returned).
# Hash types with field TTLs put their expiry dict into `box`.


cdef int _empty(Cur *c, str what, size_t at) except -1:
    return _fail(c, DecodeError, f"empty {what}", c.abs0 + at)


cdef object read_strings(Cur *c, int t):
    """Types 1 (list) and 2 (set): count, count x string."""
    cdef uint64_t n, i
    cdef size_t at = c.pos
    cdef bint build = c.values
    cdef bint pre
    cdef object out = None, s
    c_count(c, &n, "list length" if t == 1 else "set size")
    if n == 0:
        _empty(c, "list" if t == 1 else "set", at)
    pre = c_room(c, n, 1)
    if build:
        if t == 1:
            if pre:
                out = PyList_New(<Py_ssize_t>n)
                for i in range(n):
                    s = c_str(c, "list element")
                    Py_INCREF(s)
                    PyList_SET_ITEM(out, <Py_ssize_t>i, s)
                return out
            out = []
            for i in range(n):
                PyList_Append(out, c_str(c, "list element"))
            return out
        out = set()
        for i in range(n):
            PySet_Add(out, c_str(c, "set member"))
        return out
    for i in range(n):
        c_skip_str(c, "list element" if t == 1 else "set member")
    return None


cdef object read_pairs(Cur *c):
    """Type 4 (hash): count, count x (field, value)."""
    cdef uint64_t n, i
    cdef size_t at = c.pos
    cdef object out, k
    cdef bint pre
    c_count(c, &n, "hash size")
    if n == 0:
        _empty(c, "hash", at)
    pre = c_room(c, n, 2)
    if c.values:
        out = _PyDict_NewPresized(<Py_ssize_t>n if pre else 0)  # presize only what fits
        for i in range(n):
            k = c_str(c, "hash field")
            PyDict_SetItem(out, k, c_str(c, "hash value"))
        return out
    for i in range(n):
        c_skip_str(c, "hash field")
        c_skip_str(c, "hash value")
    return None


cdef object read_str_double(Cur *c):
    """A type-3 score: 1-byte length then text, 253/254/255 = nan/+inf/-inf."""
    cdef size_t at = c.pos
    cdef int ln = c_u8(c, "score length")
    if ln == 253:
        return float("nan")
    if ln == 254:
        return float("inf")
    if ln == 255:
        return float("-inf")
    c_need(c, ln, "score")
    d = parse_float_bytes(c.b + c.pos, ln)
    if d is None:
        _fail(c, DecodeError,
              f"score {PyBytes_FromStringAndSize(<const char *>c.b + c.pos, ln)!r} is not a number",
              c.abs0 + at)
    c.pos += ln
    return d


cdef object read_zset(Cur *c, int t):
    """Types 3 (text scores) and 5 (binary scores)."""
    cdef uint64_t n, i
    cdef size_t at = c.pos
    cdef double d
    cdef object out = None, k
    cdef bint pre
    c_count(c, &n, "zset size")
    if n == 0:
        _empty(c, "zset", at)
    pre = c_room(c, n, 2 if t == 3 else 9)
    if c.values:
        out = _PyDict_NewPresized(<Py_ssize_t>n if pre else 0)  # presize only what fits
    for i in range(n):
        if out is not None:
            k = c_str(c, "zset member")
        else:
            c_skip_str(c, "zset member")
        if t == 3:
            sc = read_str_double(c)
        else:
            c_need(c, 8, "zset score")
            memcpy(&d, c.b + c.pos, 8)
            c.pos += 8
            sc = PyFloat_FromDouble(d) if out is not None else None
        if out is not None:
            PyDict_SetItem(out, k, sc)
    return out


cdef Py_ssize_t _pairs_hint(int kind, SView *v, int arity) noexcept:
    """Entries a ziplist/listpack of pairs/triplets claims, to presize its dict.

    Only a hint: the header's element count (65535 = unknown) is capped by what
    the container's bytes can hold (each element takes at least 2 bytes), so a
    hostile header cannot make us allocate more than the input's size.
    """
    cdef size_t n = 0
    if kind == K_LISTPACK and v.n >= 7:
        n = ld16(v.p + 4)
    elif kind == K_ZIPLIST and v.n >= 11:
        n = ld16(v.p + 8)
    if n == 65535 or n > v.n // 2:
        n = 0
    return <Py_ssize_t>(n // <size_t>arity)


cdef object read_container(Cur *c, int kind, int mode, int arity):
    cdef SView v
    cdef object out = None
    c_view(c, &v, "container")
    if c.values:
        if mode == M_LIST:
            out = []
        elif mode == M_SET:
            out = set()
        else:
            out = _PyDict_NewPresized(_pairs_hint(kind, &v, arity))
    walk(c, kind, &v, mode if c.values else M_NONE, arity, out, None)
    return out


cdef object read_intset(Cur *c):
    cdef SView v
    out = set() if c.values else None
    c_view(c, &v, "intset")
    walk_intset(c, &v, out)
    return out


cdef object read_zipmap(Cur *c):
    cdef SView v
    out = {} if c.values else None
    c_view(c, &v, "zipmap")
    walk_zipmap(c, &v, out)
    return out


cdef object read_quicklist(Cur *c, int t):
    """Types 14 (ziplist nodes) and 18 (container + plain element or listpack)."""
    cdef uint64_t n, i, cont
    cdef size_t at = c.pos
    cdef size_t cat
    cdef SView v
    cdef SHead h
    cdef object out = None
    c_count(c, &n, "quicklist node count")
    if n == 0:
        _empty(c, "quicklist", at)
    c_room(c, n, 1 if t == 14 else 2)
    if c.values:
        out = []
    for i in range(n):
        if t == 18:
            cat = c.pos
            c_len(c, &cont, "quicklist node container")
            if cont != 1 and cont != 2:
                _fail(c, DecodeError, f"quicklist node container {cont} is not 1 (plain) or 2 (packed)",
                      c.abs0 + cat)
            if cont == 1:
                cat = c.pos
                if out is not None:
                    s = c_str(c, "quicklist plain node")
                    if len(s) == 0:
                        _fail(c, DecodeError, "zero-length quicklist node", c.abs0 + cat)
                    PyList_Append(out, s)
                else:
                    c_view(c, &v, "quicklist plain node")
                    if v.n == 0:
                        _fail(c, DecodeError, "zero-length quicklist node", c.abs0 + cat)
                continue
        c_view(c, &v, "quicklist node")
        if v.n == 0:
            _fail(c, DecodeError, "zero-length quicklist node", c.abs0 + v.at)
        walk(c, K_ZIPLIST if t == 14 else K_LISTPACK, &v, M_LIST if out is not None else M_NONE,
             1, out, None)
    return out


cdef object read_hash_meta(Cur *c, int t, list box):
    """Types 24 (minExpire + relative TTLs) and Redis pre-GA 22 (absolute TTLs)."""
    cdef uint64_t n, i, ttl
    cdef int64_t min_exp = 0
    cdef size_t at
    cdef object out = None, fexp = None, k
    if t == 24:
        c_i64(c, &min_exp, "hash minimum expiry")
    at = c.pos
    c_count(c, &n, "hash size")
    if n == 0:
        _empty(c, "hash", at)
    c_room(c, n, 3)
    if c.values:
        out = {}
        fexp = {}
    for i in range(n):
        at = c.pos
        c_len(c, &ttl, "hash field TTL")
        if out is not None:
            k = c_str(c, "hash field")
            PyDict_SetItem(out, k, c_str(c, "hash value"))
        else:
            c_skip_str(c, "hash field")
            c_skip_str(c, "hash value")
        if ttl == 0:
            if out is not None and k in fexp:
                del fexp[k]
            continue
        if t == 24:
            exp_at = <object>ttl + <object>min_exp - 1
        else:
            exp_at = ttl
        if not 0 <= exp_at <= HFE_MAX:
            _fail(c, DecodeError, f"hash field expiry {exp_at} outside 0..2^48-1", c.abs0 + at)
        if out is not None:
            PyDict_SetItem(fexp, k, exp_at)
    if fexp:
        box.append(fexp)
    return out


cdef object read_hash_lpex(Cur *c, int t, list box):
    """Types 25 (minExpire + triplet listpack) and Redis pre-GA 23 (no minExpire)."""
    cdef int64_t min_exp
    cdef SView v
    cdef object out = None, fexp = None
    if t == 25:
        c_i64(c, &min_exp, "hash minimum expiry")
    c_view(c, &v, "listpack")
    if c.values:
        out = {}
        fexp = {}
    walk(c, K_LISTPACK, &v, M_HASH_TTL if out is not None else M_NONE, 3, out, fexp)
    if fexp:
        box.append(fexp)
    return out


cdef object read_hash2_valkey(Cur *c, list box):
    """Valkey type 22 (HASH_2): count x (field, value, int64 absolute ms; -1 = none)."""
    cdef uint64_t n, i
    cdef int64_t ttl
    cdef size_t at = c.pos
    cdef object out = None, fexp = None, k
    c_count(c, &n, "hash size")
    if n == 0:
        _empty(c, "hash", at)
    c_room(c, n, 10)
    if c.values:
        out = {}
        fexp = {}
    for i in range(n):
        if out is not None:
            k = c_str(c, "hash field")
            PyDict_SetItem(out, k, c_str(c, "hash value"))
        else:
            c_skip_str(c, "hash field")
            c_skip_str(c, "hash value")
        c_i64(c, &ttl, "hash field TTL")
        if out is not None:
            if ttl != -1:
                PyDict_SetItem(fexp, k, ttl)
            elif k in fexp:
                del fexp[k]
    if fexp:
        box.append(fexp)
    return out


# ---- modules (RDB_FORMAT §8) ----

cdef object module_body(Cur *c, bint build):
    """Walk module opcodes up to and including EOF (0); returns the items list or None."""
    cdef uint64_t op, u
    cdef size_t at
    cdef float f
    cdef double d
    items = [] if build else None
    while True:
        at = c.pos
        c_len(c, &op, "module opcode")
        if op == 0:
            return items
        if op == 1 or op == 2:
            c_len(c, &u, "module integer")
            val = u
        elif op == 3:
            c_need(c, 4, "module float")
            memcpy(&f, c.b + c.pos, 4)
            c.pos += 4
            val = <double>f
        elif op == 4:
            c_need(c, 8, "module double")
            memcpy(&d, c.b + c.pos, 8)
            c.pos += 8
            val = d
        elif op == 5:
            if build:
                val = c_str(c, "module string")
            else:
                c_skip_str(c, "module string")
        else:
            _fail(c, DecodeError, f"unknown module opcode {op}", c.abs0 + at)
        if build:
            items.append((<int>op, val))


cdef object read_module(Cur *c):
    """Type 7: module id, then the module opcodes kept raw."""
    cdef uint64_t mid
    cdef size_t body
    c_len(c, &mid, "module id")
    body = c.pos
    items = module_body(c, c.values)
    if not c.values:
        return None
    raw = PyBytes_FromStringAndSize(<const char *>c.b + body, c.pos - body)
    name, encver = _model.module_name(mid)
    return _model.ModuleValue(mid, name, encver, raw, tuple(items))


# ---- streams (RDB_FORMAT §7) ----

cdef inline int _lp_need(Cur *c, CIter *it, Elem *e, size_t at) except -1:
    cdef int r = ci_next(it, e)
    if r < 0:
        return _fail(c, DecodeError, f"corrupt stream listpack: {it.err.decode()} (element {it.count})",
                     c.abs0 + at)
    if r == 0:
        return _fail(c, DecodeError, f"corrupt stream listpack: ends inside an entry (element {it.count})",
                     c.abs0 + at)
    return 0


cdef inline int64_t _lp_int(Cur *c, CIter *it, size_t at) except? -1:
    cdef Elem e
    _lp_need(c, it, &e, at)
    if not e.is_int:
        _fail(c, DecodeError, f"corrupt stream listpack: element {it.count - 1} is not an integer",
              c.abs0 + at)
    return e.ival


cdef int stream_node(Cur *c, SView *v, uint64_t mms, uint64_t mseq, object entries) except -1:
    cdef CIter it
    cdef Elem e
    cdef int r
    cdef int64_t count, deleted, nf, flags, dms, dseq, nfe, lpc, j
    cdef int64_t live = 0, dead = 0
    cdef size_t at = v.at
    cdef bint build = entries is not None
    if c.skim:
        return 0
    if ci_init(&it, K_LISTPACK, v.p, v.n) < 0:
        return _fail(c, DecodeError, f"corrupt stream listpack: {it.err.decode()}", c.abs0 + at)
    if it.pos == it.stop:
        return _fail(c, DecodeError, "empty stream listpack", c.abs0 + at)
    count = _lp_int(c, &it, at)
    deleted = _lp_int(c, &it, at)
    nf = _lp_int(c, &it, at)
    if count < 0 or deleted < 0 or nf < 0:
        return _fail(c, DecodeError, "corrupt stream listpack: negative count in the master entry",
                     c.abs0 + at)
    master = []
    for j in range(nf):
        _lp_need(c, &it, &e, at)
        master.append(elem_bytes(&e))
    if _lp_int(c, &it, at) != 0:
        return _fail(c, DecodeError, "corrupt stream listpack: master entry not closed by 0",
                     c.abs0 + at)
    while True:
        r = ci_next(&it, &e)
        if r == 0:
            break
        if r < 0:
            return _fail(c, DecodeError, f"corrupt stream listpack: {it.err.decode()} (element {it.count})",
                         c.abs0 + at)
        if not e.is_int:
            return _fail(c, DecodeError, f"corrupt stream listpack: element {it.count - 1} is not an integer",
                         c.abs0 + at)
        flags = e.ival
        dms = _lp_int(c, &it, at)
        dseq = _lp_int(c, &it, at)
        fields = [] if build else None
        if flags & 2:
            nfe = nf
            for j in range(nf):
                _lp_need(c, &it, &e, at)
                if build:
                    fields.append((master[j], elem_bytes(&e)))
        else:
            nfe = _lp_int(c, &it, at)
            if nfe < 0:
                return _fail(c, DecodeError, "corrupt stream listpack: negative field count",
                             c.abs0 + at)
            for j in range(nfe):
                _lp_need(c, &it, &e, at)
                k = elem_bytes(&e) if build else None
                _lp_need(c, &it, &e, at)
                if build:
                    fields.append((k, elem_bytes(&e)))
        lpc = _lp_int(c, &it, at)
        if lpc != (nfe + 3 if flags & 2 else 2 * nfe + 4):
            return _fail(c, DecodeError, f"corrupt stream listpack: entry element count {lpc} is wrong",
                         c.abs0 + at)
        if flags & 1:
            dead += 1
        else:
            live += 1
            if build:
                entries.append(_new_stream_entry(
                    _new_sid(<uint64_t>(mms + <uint64_t>dms), <uint64_t>(mseq + <uint64_t>dseq)),
                    tuple(fields)))
    if live != count or dead != deleted:
        return _fail(c, DecodeError,
                     f"corrupt stream listpack: master entry counts {count} live/{deleted} deleted, "
                     f"found {live}/{dead}", c.abs0 + at)
    return 0


cdef object _sid(Cur *c, const char *what):
    cdef uint64_t ms, seq
    c_len(c, &ms, what)
    c_len(c, &seq, what)
    return _new_sid(ms, seq)


cdef object read_stream(Cur *c, int t):
    cdef uint64_t nodes, i, j, ngroups, npel, ncons, ncp, length, u, dcount
    cdef uint64_t mms = 0, mseq = 0
    cdef int64_t tm
    cdef size_t at
    cdef SView v
    cdef bint build = c.values
    entries = [] if build else None
    c_count(c, &nodes, "stream listpack count")
    c_room(c, nodes, 2)
    for i in range(nodes):
        c_view(c, &v, "stream master ID")
        if v.n != 16 and not c.skim:
            _fail(c, DecodeError, f"stream master ID is {v.n} bytes, not 16", c.abs0 + v.at)
        if not c.skim:
            mms = ld64be(v.p)
            mseq = ld64be(v.p + 8)
        c_view(c, &v, "stream listpack")
        stream_node(c, &v, mms, mseq, entries)
    c_len(c, &length, "stream length")
    last_id = _sid(c, "stream last ID")
    first_id = max_del = added = None
    if t != 15:
        first_id = _sid(c, "stream first ID")
        max_del = _sid(c, "stream max deleted ID")
        c_len(c, &u, "stream entries added")
        added = u
    c_count(c, &ngroups, "stream group count")
    c_room(c, ngroups, 5)
    groups = []
    for i in range(ngroups):
        gname = c_str(c, "group name")
        glast = _sid(c, "group last ID")
        entries_read = None
        if t != 15:
            c_len(c, &u, "group entries read")
            entries_read = <int64_t>u      # signed in Redis: -1 = unknown
        c_count(c, &npel, "group PEL size")
        c_room(c, npel, 25)
        pel = []
        owners = {}
        for j in range(npel):
            c_need(c, 16, "PEL entry ID")
            sid = _new_sid(ld64be(c.b + c.pos), ld64be(c.b + c.pos + 8))
            c.pos += 16
            c_i64(c, &tm, "PEL delivery time")
            c_len(c, &dcount, "PEL delivery count")
            pel.append((sid, tm, dcount))
        c_count(c, &ncons, "group consumer count")
        c_room(c, ncons, 10)
        consumers = []
        for j in range(ncons):
            cname = c_str(c, "consumer name")
            c_i64(c, &tm, "consumer seen time")
            seen = tm
            active = None
            if t >= 21:
                c_i64(c, &tm, "consumer active time")
                active = tm
            c_count(c, &ncp, "consumer PEL size")
            c_room(c, ncp, 16)
            cpel = []
            for u in range(ncp):
                c_need(c, 16, "consumer PEL entry ID")
                sid = _new_sid(ld64be(c.b + c.pos), ld64be(c.b + c.pos + 8))
                c.pos += 16
                owners[sid] = cname
                cpel.append(sid)
            if build:
                consumers.append(_model.StreamConsumer(cname, seen, active, tuple(cpel)))
        if build:
            groups.append(_model.StreamGroup(
                gname, glast, entries_read,
                tuple([_model.StreamPending(p[0], p[1], p[2], owners.get(p[0])) for p in pel]),
                tuple(consumers)))
    if t == 26:
        read_idmp(c)
    if not build:
        return None
    return _model.Stream(tuple(entries), length, last_id, first_id, max_del, added, tuple(groups))


cdef int read_idmp(Cur *c) except -1:
    """Type 26 IDMP block, as laid out in the one real file we have
    (librdb stream_v13_idmp.rdb): duration, maxsize, producer count, then per
    producer its name and (iid, stream ID) pairs, then two counters. Walked
    and checked, not kept (the value model has no place for it)."""
    cdef uint64_t u, nprod, niid, i, j
    c_len(c, &u, "IDMP duration")
    c_len(c, &u, "IDMP max size")
    c_count(c, &nprod, "IDMP producer count")
    c_room(c, nprod, 2)
    for i in range(nprod):
        c_skip_str(c, "IDMP producer")
        c_count(c, &niid, "IDMP producer entry count")
        c_room(c, niid, 3)
        for j in range(niid):
            c_skip_str(c, "IDMP iid")
            c_len(c, &u, "IDMP stream ID")
            c_len(c, &u, "IDMP stream ID")
    c_len(c, &u, "IDMP counter")
    c_len(c, &u, "IDMP counter")
    return 0


cdef int skip_key_meta(Cur *c) except -1:
    """Redis 13 KEY_META (243): count x (4-byte class spec, module opcodes to EOF); not kept."""
    cdef uint64_t n, i
    c_count(c, &n, "key metadata class count")
    c_room(c, n, 5)
    for i in range(n):
        c_need(c, 4, "key metadata class spec")
        c.pos += 4
        module_body(c, False)
    return 0
