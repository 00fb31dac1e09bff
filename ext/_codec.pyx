# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""rdbkit's C RDB decoder (``rdbkit._codec``), the fast twin of ``rdbkit._pycodec``.

The API and the error/offset rules are in ``docs/codec.md``; the format facts
in ``shared/RDB_FORMAT.md``. Parsing runs over a malloc'd buffer with a
checked cursor (``_cursor.pxi``); compact containers are walked in
``_containers.pxi``; value readers by type are in ``_values.pxi``.
"""

from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t)
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove
from libc.stddef cimport ptrdiff_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetItem
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.buffer cimport PyBUF_WRITE
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_Append, PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject, PyObject_GenericSetAttr
from cpython.ref cimport Py_INCREF
from cpython.set cimport PySet_Add

import os as _os

cimport cython

from rdbkit.codec import model as _model
from rdbkit.errors import (
    DecodeError,
    ChecksumError,
    LimitExceededError,
    TruncatedError,
    UnsupportedEncodingError,
    UnsupportedVersionError,
)

cdef extern from "Python.h":
    double PyOS_string_to_double(const char *s, char **endptr, PyObject *overflow_exception)

cdef extern from "lzf.h":
    enum:
        RDBKIT_LZF_E_INPUT
        RDBKIT_LZF_E_OUTPUT
        RDBKIT_LZF_E_BACKREF
    ptrdiff_t rdbkit_lzf_decompress(const uint8_t *inp, size_t in_len, uint8_t *out,
                                    size_t out_len, size_t *err_at) nogil

cdef extern from "fastfloat.h":
    void rdbkit_ff_set(int q, uint64_t hi, uint64_t lo) noexcept nogil
    int rdbkit_ff_compute(uint64_t w, int64_t q, int negative, double *out) noexcept nogil

cdef extern from "crc64.h":
    void rdbkit_crc64_init() nogil
    uint64_t rdbkit_crc64(uint64_t crc, const uint8_t *p, size_t n) nogil

rdbkit_crc64_init()

DEFAULT_MAX_STRING_LEN = 512 * 1024 * 1024
DEFAULT_MAX_COLLECTION_LEN = 2 ** 32
DEFAULT_MAX_BUFFER_SIZE = 1024 * 1024 * 1024

cdef extern from "Python.h":
    # CPython's own presizing constructor (Cython's dict literals use it too).
    object _PyDict_NewPresized(Py_ssize_t minused)

cdef object _StreamID = _model.StreamID
cdef object _StreamEntry = _model.StreamEntry
cdef str _S_ID = "id"
cdef str _S_FIELDS = "fields"


cdef inline object _new_sid(uint64_t ms, uint64_t seq):
    """A model.StreamID without the NamedTuple's Python-level __new__ frame."""
    return tuple.__new__(_StreamID, (ms, seq))


cdef object _new_stream_entry(object sid, object fields):
    """A model.StreamEntry without running the frozen dataclass's __init__.

    Streams hold many entries, and the generated __init__ (a Python frame
    calling object.__setattr__ per field) cost more than parsing them.
    """
    cdef object o = object.__new__(_StreamEntry)
    PyObject_GenericSetAttr(o, _S_ID, sid)
    PyObject_GenericSetAttr(o, _S_FIELDS, fields)
    return o

include "_cursor.pxi"
include "_containers.pxi"
include "_values.pxi"

# type byte -> (logical type, encoding name); None = not a value type here
cdef tuple _TYPES = (
    ("string", "string"), ("list", "linkedlist"), ("set", "hashtable"), ("zset", "skiplist"),
    ("hash", "hashtable"), ("zset", "skiplist"), None, ("module", "module"), None,
    ("hash", "zipmap"), ("list", "ziplist"), ("set", "intset"), ("zset", "ziplist"),
    ("hash", "ziplist"), ("list", "quicklist"), ("stream", "stream"), ("hash", "listpack"),
    ("zset", "listpack"), ("list", "quicklist2"), ("stream", "stream"), ("set", "listpack"),
    ("stream", "stream"), ("hash", "hashtable"), ("hash", "listpack_ex"), ("hash", "hashtable"),
    ("hash", "listpack_ex"), ("stream", "stream"),
)

cdef object _SHORT = object()   # sentinel: the item is not fully buffered yet

# decoder states
cdef enum:
    ST_HEADER = 0
    ST_BODY = 1
    ST_DONE = 2


@cython.freelist(64)
cdef class Entry:
    """One key of the snapshot (attributes as in docs/codec.md).

    Only key, value, db and field_expires are Python objects; the rest is
    kept in C and turned into Python values when read (building an Entry is
    the per-key cost every decode pays).
    """

    cdef readonly object db, key, value, field_expires
    cdef object _names            # (type, encoding) when built by hand with unknown names
    cdef int _op                  # type byte (names from the tables), -1 = see _names
    cdef int _freq                # -1 = none
    cdef bint _has_expire, _has_idle
    cdef int64_t _expire
    cdef uint64_t _idle
    cdef uint64_t _offset, _size

    def __init__(self, db=0, key=b"", type="string", value=None, expire_ms=None, idle=None,
                 freq=None, field_expires=None, encoding="string", offset=0, size=0):
        self.db = db
        self.key = key
        self.value = value
        self.field_expires = field_expires
        self._op = -1
        for i in range(27):
            if _TNAME[i] != NULL and <object>_TNAME[i] == type and <object>_ENAME[i] == encoding:
                self._op = i
                break
        if self._op < 0:
            self._names = (type, encoding)
        self._has_expire = expire_ms is not None
        self._expire = expire_ms if expire_ms is not None else 0
        self._has_idle = idle is not None
        self._idle = idle if idle is not None else 0
        self._freq = freq if freq is not None else -1
        self._offset = offset
        self._size = size

    @property
    def type(self):
        """Logical type: string list set zset hash stream module."""
        return <object>_TNAME[self._op] if self._op >= 0 else self._names[0]

    @property
    def encoding(self):
        """The RDB encoding name (docs/codec.md table)."""
        return <object>_ENAME[self._op] if self._op >= 0 else self._names[1]

    @property
    def expire_ms(self):
        """Absolute unix ms, or None."""
        return self._expire if self._has_expire else None

    @property
    def idle(self):
        """LRU idle seconds (opcode IDLE), or None."""
        return self._idle if self._has_idle else None

    @property
    def freq(self):
        """LFU counter 0-255 (opcode FREQ), or None."""
        return self._freq if self._freq >= 0 else None

    @property
    def offset(self):
        """Byte offset of the entry's first byte (its first prefix opcode, or its type byte)."""
        return self._offset

    @property
    def size(self):
        """Bytes from offset to the end of the value."""
        return self._size

    def astuple(self):
        """The attributes in the documented order."""
        return (self.db, self.key, self.type, self.value, self.expire_ms, self.idle, self.freq,
                self.field_expires, self.encoding, self._offset, self._size)

    def __eq__(self, other):
        if not isinstance(other, Entry):
            return NotImplemented
        return self.astuple() == (<Entry>other).astuple()

    def __ne__(self, other):
        if not isinstance(other, Entry):
            return NotImplemented
        return self.astuple() != (<Entry>other).astuple()

    def __repr__(self):
        return (f"Entry(db={self.db!r}, key={self.key!r}, type={self.type!r}, "
                f"encoding={self.encoding!r})")

    def __reduce__(self):
        return (Entry, self.astuple())


# type byte -> borrowed interned names (the tuples in _TYPES keep them alive)
cdef PyObject *_TNAME[27]
cdef PyObject *_ENAME[27]
for _i in range(27):
    if _TYPES[_i] is not None:
        _TNAME[_i] = <PyObject *>(<tuple>_TYPES[_i])[0]
        _ENAME[_i] = <PyObject *>(<tuple>_TYPES[_i])[1]
    else:
        _TNAME[_i] = NULL
        _ENAME[_i] = NULL


@cython.final
cdef class Decoder:
    """Push or pull RDB decoder yielding Entry objects (see docs/codec.md)."""

    cdef Cur c
    cdef uint8_t *buf
    cdef size_t cap, start, bend
    cdef uint64_t buf_abs, crc, need_total
    cdef object fileobj
    cdef bint own_file, pull, src_eof, closed, verify, retry, crc_on
    cdef size_t crc_pos
    cdef object readinto
    cdef int ver
    cdef int state
    cdef size_t read_size
    cdef object db_obj
    cdef bint valkey
    cdef list box
    cdef readonly object version, magic, aux, functions, module_aux, slot_info, resize_hints
    cdef readonly object checksum, checksum_status
    cdef readonly bint done
    cdef readonly object trailing_bytes

    def __cinit__(self):
        self.buf = NULL
        self.c.scratch = NULL
        self.c.scratch_cap = 0

    def __dealloc__(self):
        free(self.buf)
        free(self.c.scratch)

    def __init__(self, fileobj=None, *, verify_checksum=True, values=True,
                 max_string_len=DEFAULT_MAX_STRING_LEN,
                 max_collection_len=DEFAULT_MAX_COLLECTION_LEN,
                 max_buffer_size=DEFAULT_MAX_BUFFER_SIZE, read_size=1 << 20):
        if max_string_len < 0 or max_collection_len < 0 or max_buffer_size < 0:
            raise ValueError("limits must be non-negative")
        if read_size < 1:
            raise ValueError("read_size must be positive")
        if max_string_len > max_buffer_size:
            raise ValueError(f"max_string_len {max_string_len} exceeds max_buffer_size {max_buffer_size}")
        if max_buffer_size > 2 ** 62:
            raise ValueError("max_buffer_size is too large")
        self.c.max_string_len = max_string_len
        self.c.max_collection_len = min(max_collection_len, 2 ** 64 - 1)
        self.c.max_buffer_size = max_buffer_size
        self.c.values = bool(values)
        self.verify = bool(verify_checksum)
        self.read_size = read_size
        self.own_file = False
        if isinstance(fileobj, (str, bytes, _os.PathLike)):
            fileobj = open(fileobj, "rb")
            self.own_file = True
        self.fileobj = fileobj
        self.readinto = getattr(fileobj, "readinto", None) if fileobj is not None else None
        self.pull = fileobj is not None
        self.crc_pos = 0
        self.src_eof = False
        self.closed = False
        self.retry = False
        self.crc_on = False
        self.ver = 0
        self.state = ST_HEADER
        self.cap = self.start = self.bend = 0
        self.buf_abs = self.crc = self.need_total = 0
        self.db_obj = 0
        self.valkey = False
        self.box = []
        self.version = None
        self.magic = None
        self.aux = {}
        self.functions = []
        self.module_aux = []
        self.slot_info = []
        self.resize_hints = {}
        self.checksum = None
        self.checksum_status = None
        self.done = False
        self.trailing_bytes = 0

    # ---- buffer ----

    cdef int _reserve(self, size_t n) except -1:
        """Make room for n more bytes at bend: drop consumed bytes, then grow."""
        cdef size_t keep, cap
        cdef uint8_t *nb
        if self.bend + n > self.cap and self.start > 0:
            self._crc_upto(self.start)
            keep = self.bend - self.start
            memmove(self.buf, self.buf + self.start, keep)
            self.buf_abs += self.start
            self.start = 0
            self.crc_pos = 0
            self.bend = keep
        if self.bend + n > self.cap:
            cap = self.cap * 2
            if cap < self.bend + n:
                cap = self.bend + n
            if cap < 65536:
                cap = 65536
            nb = <uint8_t *>realloc(self.buf, cap)
            if nb == NULL:
                raise MemoryError()
            self.buf = nb
            self.cap = cap
        return 0

    cdef int _append(self, const uint8_t *data, size_t n) except -1:
        if n == 0:
            return 0
        self._reserve(n)
        memcpy(self.buf + self.bend, data, n)
        self.bend += n
        return 0

    cdef inline void _crc_upto(self, size_t end) noexcept:
        """Fold buf[crc_pos:end] into the running CRC (done in big spans, not per item)."""
        if self.crc_on and end > self.crc_pos:
            self.crc = rdbkit_crc64(self.crc, self.buf + self.crc_pos, end - self.crc_pos)
        if end > self.crc_pos:
            self.crc_pos = end

    def feed(self, data) -> None:
        """Append bytes to the buffer (push mode)."""
        cdef const uint8_t[::1] mv
        if self.pull:
            raise RuntimeError("feed() is for push mode; this decoder reads its file itself")
        if self.closed:
            raise RuntimeError("feed() called after close()")
        if type(data) is not bytes:
            data = bytes(data)
        if self.state == ST_DONE:
            self.trailing_bytes += len(data)
            return
        self._append(<const uint8_t *>PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data))

    cdef int _read_more(self) except -1:
        cdef size_t buffered = self.bend - self.start
        cdef uint64_t n, want = 0
        if self.need_total > buffered:
            want = self.need_total - buffered
        n = self.read_size
        if n < buffered:
            n = buffered            # grow geometrically while one item keeps running short
        if buffered < self.c.max_buffer_size and n > self.c.max_buffer_size - buffered:
            n = self.c.max_buffer_size - buffered
        if n < want:
            n = want
        if n < 1:
            n = 1
        if self.readinto is not None:
            self._reserve(<size_t>n)
            mv = PyMemoryView_FromMemory(<char *>self.buf + self.bend, <Py_ssize_t>n, PyBUF_WRITE)
            try:
                got = self.readinto(mv)
            finally:
                mv.release()
            if not got:
                self.src_eof = True
                return 0
            if got < 0 or got > n:
                raise ValueError(f"readinto() returned {got} for a {n}-byte buffer")
            self.bend += <size_t>got
            return 0
        data = self.fileobj.read(n)
        if not data:
            self.src_eof = True
            return 0
        if type(data) is not bytes:
            data = bytes(data)
        self._append(<const uint8_t *>PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data))
        return 0

    # ---- iteration ----

    def __iter__(self):
        return self

    def __next__(self):
        cdef object r
        while True:
            if self.state == ST_DONE:
                self._finish()
                raise StopIteration
            if self.bend - self.start < self.need_total:
                if self.pull and not self.src_eof:
                    self._read_more()
                    continue
                if not self.pull:
                    raise StopIteration
            try:
                r = self._step(self.pull and self.src_eof)
            except DecodeError:
                self._release()
                raise
            if r is _SHORT:
                if self.pull:
                    if self.src_eof:   # cannot happen: final mode never runs short
                        raise AssertionError("short read in final mode")
                    continue
                raise StopIteration
            if r is not None:
                return r

    cdef object _step(self, bint final):
        """Parse one item at the buffer start; commit it, or return _SHORT.

        After an item ran short once, each retry first *skims* it (file-level
        reads only: no LZF, no container walks, no values), which is cheap, and
        only parses it for real once the skim shows all of it is buffered; so
        a big entry fed in small chunks costs little per chunk.
        """
        cdef Cur *c = &self.c
        cdef bint values = c.values
        if self.retry and not final and self.state == ST_BODY:
            self._setup(final)
            c.skim = True
            c.values = False
            try:
                self._item()
            except _Short:
                self.need_total = c.need
                return _SHORT
            except DecodeError:
                pass            # the full parse below reports the canonical error
            finally:
                c.skim = False
                c.values = values
                c.key = NULL
                self.box.clear()
        self._setup(final)
        try:
            if self.state == ST_HEADER:
                r = self._header()
            else:
                r = self._item()
        except _Short:
            self.need_total = c.need
            self.retry = True
            return _SHORT
        finally:
            c.key = NULL
        self.start = c.pos
        self.need_total = 0
        self.retry = False
        return r

    cdef void _setup(self, bint final) noexcept:
        cdef Cur *c = &self.c
        cdef size_t lim
        c.b = self.buf
        c.pos = self.start
        c.item_start = self.start
        c.real_end = self.bend
        lim = self.bend - self.start
        if lim > c.max_buffer_size:
            lim = <size_t>c.max_buffer_size
        c.end = self.start + lim
        c.abs0 = self.buf_abs
        c.final = final
        c.need = 0
        c.key = NULL
        c.skim = False

    cdef object _header(self):
        cdef Cur *c = &self.c
        c_need(c, 9, "RDB header")
        m = PyBytes_FromStringAndSize(<const char *>c.b + c.pos, 9)
        if m[:5] == b"REDIS" and m[5:].isdigit():
            ver = int(m[5:])
            if not 1 <= ver <= 14:
                _fail(c, UnsupportedVersionError, f"unsupported RDB version {ver}", c.abs0 + c.pos)
            self.magic = "REDIS"
        elif m[:6] == b"VALKEY" and m[6:].isdigit():
            ver = int(m[6:])
            if ver not in (80, 81):
                _fail(c, UnsupportedVersionError, f"unsupported RDB version {ver} (VALKEY magic)",
                      c.abs0 + c.pos)
            self.magic = "VALKEY"
            self.valkey = True
        else:
            _fail(c, DecodeError, f"not an RDB file: bad magic {m!r}", c.abs0 + c.pos)
        self.version = ver
        self.ver = ver
        self.crc_on = self.verify and ver >= 5
        c.pos += 9
        self.state = ST_BODY
        return None

    cdef object _item(self):
        """One top-level item: a key with its prefix opcodes, or one file-level opcode.

        File-level opcodes met between a key's prefix opcodes and its type byte
        (KeyDB writes AUX mvcc-tstamp there) are kept pending, as Redis does,
        and committed with the key; EOF there is an error.
        """
        cdef Cur *c = &self.c
        cdef size_t start = c.pos
        cdef size_t op_at
        cdef int op
        cdef int64_t i64
        cdef uint64_t u
        cdef int64_t expire = 0
        cdef uint64_t idle = 0
        cdef int freq = -1
        cdef bint has_expire = False, has_idle = False
        cdef object pend = None
        cdef object db = self.db_obj
        cdef bint prefix = False
        cdef Entry e
        while True:
            op_at = c.pos
            op = c_u8(c, "type or opcode")
            if op == 252:
                c_i64(c, &expire, "expire time (ms)")
                has_expire = True
            elif op == 253:
                c_need(c, 4, "expire time (s)")
                expire = <int64_t>(<int32_t>ld32(c.b + c.pos)) * 1000
                has_expire = True
                c.pos += 4
            elif op == 248:
                c_len(c, &idle, "idle time")
                has_idle = True
            elif op == 249:
                freq = c_u8(c, "LFU frequency")
            elif op == 243 and not self.valkey:
                skip_key_meta(c)
            elif prefix and 244 <= op <= 254 and op != 248 and op != 249 and op != 252 \
                    and op != 253:
                if pend is None:
                    pend = []
                self._file_op(op, op_at, pend)
                if op == 254:
                    db = pend[len(pend) - 1][1]
            else:
                break
            prefix = True
        if op <= 26 and _TNAME[op] != NULL and not (self.valkey and op > 22):
            key = c_str(c, "key")
            c.key = <PyObject *>key
            value = self._value(op)
            e = Entry.__new__(Entry)
            e.db = db
            e.key = key
            e._op = op
            if value is not None:
                e.value = value
            e._has_expire = has_expire
            e._expire = expire
            e._has_idle = has_idle
            e._idle = idle
            e._freq = freq
            if self.box:
                e.field_expires = self.box.pop()
            e._offset = c.abs0 + start
            e._size = c.pos - start
            if pend is not None and not c.skim:
                self._apply(pend)
            return e
        self._unsupported(op, op_at)
        if prefix:
            _fail(c, DecodeError, f"opcode {op} follows a key prefix opcode instead of a type byte",
                  c.abs0 + op_at)
        if op == 255:
            return self._eof(start)
        pend = []
        self._file_op(op, op_at, pend)
        if not c.skim:
            self._apply(pend)
        return None

    cdef int _file_op(self, int op, size_t op_at, list pend) except -1:
        """Parse one file-level opcode's payload into pend (committed by _apply)."""
        cdef Cur *c = &self.c
        cdef uint64_t u, u2, u3
        if op == 254:
            c_len(c, &u, "database number")
            pend.append(("db", u))
        elif op == 251:
            c_len(c, &u, "database size hint")
            c_len(c, &u2, "expires size hint")
            pend.append(("resize", (u, u2)))
        elif op == 250:
            k = c_str(c, "AUX key")
            v = c_str(c, "AUX value")
            pend.append(("aux", k, v))
        elif op == 247:
            pend.append(("module_aux", self._module_aux()))
        elif op == 245:
            pend.append(("function", c_str(c, "function library")))
        elif op == 246:
            # Redis 7.0-rc: name, engine, has-description flag [description], code
            c_skip_str(c, "function name")
            c_skip_str(c, "function engine")
            c_len(c, &u, "function description flag")
            if u:
                c_skip_str(c, "function description")
            pend.append(("function", c_str(c, "function code")))
        elif op == 244:
            c_len(c, &u, "slot")
            c_len(c, &u2, "slot key count")
            c_len(c, &u3, "slot expires count")
            pend.append(("slot", _model.SlotInfo(u, u2, u3)))
        else:
            _fail(c, DecodeError, f"unknown type byte {op}", c.abs0 + op_at)
        return 0

    cdef int _apply(self, list pend) except -1:
        for rec in pend:
            kind = rec[0]
            if kind == "db":
                self.db_obj = rec[1]
            elif kind == "resize":
                self.resize_hints[self.db_obj] = rec[1]
            elif kind == "aux":
                self.aux[rec[1]] = rec[2]
            elif kind == "module_aux":
                self.module_aux.append(rec[1])
            elif kind == "function":
                self.functions.append(rec[1])
            else:
                self.slot_info.append(rec[1])
        return 0

    cdef int _unsupported(self, int op, size_t op_at) except -1:
        """Bytes whose layout is not established: UnsupportedEncodingError (docs/codec.md)."""
        cdef Cur *c = &self.c
        what = None
        if op == 6:
            what = "module value, pre-GA format (type 6)"
        elif op == 107:
            what = "Redis Enterprise RAM_LRU opcode (107)"
        elif self.valkey:
            if op == 23:
                what = "Valkey PATH_HASH (type 23)"
            elif op == 242:
                what = "Valkey UPDATE opcode (242)"
            elif op == 243:
                what = "Valkey SLOT_IMPORT opcode (243)"
        elif op == 27:
            what = "stream with NACK zone (type 27)"
        elif 28 <= op <= 33:
            what = f"type {op} (Redis 8.8+)"
        if what is not None:
            _fail(c, UnsupportedEncodingError, f"unsupported {what}: type byte {op}", c.abs0 + op_at)
        return 0

    cdef object _value(self, int t):
        cdef Cur *c = &self.c
        if t == 0:
            if c.values:
                return c_str(c, "string value")
            c_skip_str(c, "string value")
            return None
        if t == 1 or t == 2:
            return read_strings(c, t)
        if t == 18:
            return read_quicklist(c, t)
        if t == 16:
            return read_container(c, K_LISTPACK, M_HASH, 2)
        if t == 20:
            return read_container(c, K_LISTPACK, M_SET, 1)
        if t == 17:
            return read_container(c, K_LISTPACK, M_ZSET, 2)
        if t == 11:
            return read_intset(c)
        if t == 4:
            return read_pairs(c)
        if t == 3 or t == 5:
            return read_zset(c, t)
        if t == 14:
            return read_quicklist(c, t)
        if t == 10:
            return read_container(c, K_ZIPLIST, M_LIST, 1)
        if t == 12:
            return read_container(c, K_ZIPLIST, M_ZSET, 2)
        if t == 13:
            return read_container(c, K_ZIPLIST, M_HASH, 2)
        if t == 9:
            return read_zipmap(c)
        if t == 15 or t == 19 or t == 21 or t == 26:
            return read_stream(c, t)
        if t == 7:
            return read_module(c)
        if t == 22:
            if self.valkey:
                return read_hash2_valkey(c, self.box)
            return read_hash_meta(c, t, self.box)
        if t == 24:
            return read_hash_meta(c, t, self.box)
        if t == 23 or t == 25:
            return read_hash_lpex(c, t, self.box)
        raise AssertionError(f"unhandled type {t}")

    cdef object _module_aux(self):
        cdef Cur *c = &self.c
        cdef uint64_t mid, wop, when
        cdef size_t at, body
        c_len(c, &mid, "module id")
        at = c.pos
        c_len(c, &wop, "module aux when-opcode")
        if wop != 2:
            _fail(c, DecodeError, f"module aux when-opcode {wop} is not 2 (UINT)", c.abs0 + at)
        c_len(c, &when, "module aux when")
        body = c.pos
        items = module_body(c, True)
        raw = PyBytes_FromStringAndSize(<const char *>c.b + body, c.pos - body)
        name, encver = _model.module_name(mid)
        return _model.ModuleAux(mid, name, encver, when, raw, tuple(items))

    cdef object _eof(self, size_t start):
        cdef Cur *c = &self.c
        cdef uint64_t stored, crc
        cdef size_t at
        if c.skim:
            if self.ver >= 5:
                c_need(c, 8, "checksum")
            return None
        if self.ver >= 5:
            at = c.pos
            c_need(c, 8, "checksum")
            stored = ld64(c.b + at)
            c.pos += 8
            if stored == 0:
                self.checksum_status = "disabled"
            elif not self.verify:
                self.checksum_status = "unchecked"
            else:
                self._crc_upto(at)
                crc = self.crc
                if crc != stored:
                    _fail(c, ChecksumError,
                          f"checksum mismatch: stored 0x{stored:016x}, computed 0x{crc:016x}",
                          c.abs0 + at)
                self.checksum_status = "ok"
            self.checksum = stored
        else:
            self.checksum_status = "absent"
        self.state = ST_DONE
        self.done = True
        return None

    cdef int _finish(self) except -1:
        """After EOF: count the buffered bytes past the checksum and release the file.

        Pull mode never reads further (the source may be a replication stream
        that goes on after the snapshot)."""
        if self.bend > self.start:
            self.trailing_bytes += self.bend - self.start
            self.start = self.bend
        self._release()
        return 0

    cdef int _release(self) except -1:
        if self.own_file and self.fileobj is not None:
            self.fileobj.close()
            self.fileobj = None
            self.readinto = None
        return 0

    def tell(self) -> int:
        """Absolute offset of the first byte not yet consumed (start of the next item)."""
        return self.buf_abs + self.start

    def close(self) -> None:
        """Finish: in push mode raise TruncatedError if the stream stopped before EOF (+ checksum)."""
        if self.closed:
            return
        try:
            if not self.pull and self.state != ST_DONE:
                while self.state != ST_DONE:
                    self._step(True)
            if self.state == ST_DONE:
                self._finish()
        finally:
            self.closed = True
            self._release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.closed = True
            self._release()
        return False


def crc64(data, crc: int = 0) -> int:
    """Jones CRC-64 (RDB_FORMAT §10) of data, continuing from crc."""
    cdef const uint8_t[::1] mv
    cdef uint64_t r = crc
    if isinstance(data, bytes):
        return rdbkit_crc64(r, <const uint8_t *>PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data))
    mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return r
    return rdbkit_crc64(r, &mv[0], mv.shape[0])


def lzf_decompress(data, expected_len: int) -> bytes:
    """Decompress LZF data to exactly expected_len bytes; DecodeError(offset=0) otherwise."""
    cdef size_t err_at = 0
    cdef ptrdiff_t r
    data = bytes(data)
    cdef size_t n = len(data)
    if expected_len < 0 or expected_len > 88 * n:
        raise DecodeError(f"corrupt LZF data: {expected_len} bytes cannot come from {n}", offset=0)
    out = PyBytes_FromStringAndSize(NULL, expected_len)
    r = rdbkit_lzf_decompress(<const uint8_t *>PyBytes_AS_STRING(data), n,
                              <uint8_t *>PyBytes_AS_STRING(out), <size_t>expected_len, &err_at)
    if r < 0:
        raise DecodeError(f"corrupt LZF data at compressed byte {err_at}", offset=0)
    if <size_t>r != <size_t>expected_len:
        raise DecodeError(f"corrupt LZF data: output is {r} bytes, expected {expected_len}", offset=0)
    return out


include "_encode.pxi"
