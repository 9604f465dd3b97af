/*
 * ferryman._speedups: the recording's hot loops, compiled (docs/adr/0015).
 *
 * Optional. The Python code is the reference: Observer.finish_py (recorder.py), Metrics._add
 * (metrics.py), AccessLog._clf_lines and AccessLog._json (accesslog.py). The twins here do the same
 * work on the same values (the recorder's entries, layout recorder.E_*) and give the same results
 * byte for byte (tests/unit/observability/test_speedups.py compares them on random inputs). Each
 * stops at what it does not handle (another consumer's entry, an unexpected type, a number beyond
 * 64 bits, text that is not valid UTF-8) and leaves it, unchanged, to the Python code. The only
 * state kept between calls is the slot offsets of the two classes the Finisher reads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <string.h>

#define E_MASK 0
#define E_LABELS 1
#define E_LINE 2
#define E_SIZE 3
#define E_REQ_SIZE 4
#define E_START 5
#define E_DURATION 6
#define E_RETRIES 7
#define E_CLIENT_IP 8
#define E_CLIENT_PORT 9
#define E_USER 10
#define E_TLS 11
#define E_MIN_LEN 12  /* the entries' length up to E_TLS; E_EXTRA is the last */
#define E_EXTRA 13

#define NS_PER_S 1000000000LL

/* ------------------------------------------------------------------ output buffer (a bytes object) */

typedef struct {
    PyObject *bytes;
    char *p;
    Py_ssize_t len;
    Py_ssize_t cap;
} Out;

static int out_init(Out *o, Py_ssize_t cap) {
    o->bytes = PyBytes_FromStringAndSize(NULL, cap);
    if (o->bytes == NULL) return -1;
    o->p = PyBytes_AS_STRING(o->bytes);
    o->len = 0;
    o->cap = cap;
    return 0;
}

static int out_reserve(Out *o, Py_ssize_t need) {
    if (o->len + need <= o->cap) return 0;
    Py_ssize_t cap = o->cap * 2;
    while (cap < o->len + need) cap *= 2;
    if (_PyBytes_Resize(&o->bytes, cap) < 0) return -1;
    o->p = PyBytes_AS_STRING(o->bytes);
    o->cap = cap;
    return 0;
}

static inline void out_raw(Out *o, const char *s, Py_ssize_t n) {
    memcpy(o->p + o->len, s, (size_t)n);
    o->len += n;
}

/* Appends a string literal; 0, or -1 on error. */
#define OUT_LIT(o, lit) (out_reserve((o), (Py_ssize_t)sizeof(lit) - 1) < 0 ? -1 \
                         : (out_raw((o), (lit), (Py_ssize_t)sizeof(lit) - 1), 0))

/* Appends a str as UTF-8 (its UTF-8 form is cached in the object after the first use). */
static int out_str(Out *o, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) return -1;
    if (out_reserve(o, n) < 0) return -1;
    out_raw(o, u, n);
    return 0;
}

static int out_int(Out *o, long long v) {
    char tmp[24];
    int i = 24;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    if (out_reserve(o, 24 - i) < 0) return -1;
    out_raw(o, tmp + i, 24 - i);
    return 0;
}

static PyObject *out_finish(Out *o) {
    if (_PyBytes_Resize(&o->bytes, o->len) < 0) return NULL;
    PyObject *b = o->bytes;
    o->bytes = NULL;
    return b;
}

/* Python's floor division / modulo for a positive divisor. */
static inline long long floor_mod(long long a, long long b) {
    long long m = a % b;
    return m < 0 ? m + b : m;
}

static inline long long floor_div(long long a, long long b) {
    return (a - floor_mod(a, b)) / b;
}

/* A small non-negative-or-not int that fits 64 bits; -1 with *ok = 0 otherwise (error cleared). */
static inline long long as_ll(PyObject *v, int *ok) {
    if (!PyLong_CheckExact(v)) {
        *ok = 0;
        return -1;
    }
    int overflow = 0;
    long long r = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (r == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        *ok = 0;
        return -1;
    }
    return r;
}

/* ------------------------------------------------------------------ access log: CLF lines */

/* args[1..3] of the formatting loops: the consumer's bit, the wall-clock offset, the RequestCount */
static int line_args(PyObject *const *args, long long *bit, long long *offset, long long *count) {
    long long *out[3] = {bit, offset, count};
    for (int k = 0; k < 3; k++) {
        *out[k] = PyLong_AsLongLong(args[k + 1]);
        if (*out[k] == -1 && PyErr_Occurred()) return -1;
    }
    return 0;
}

PyDoc_STRVAR(clf_lines_doc,
"clf_lines(batch, bit, offset, count, parts, make_parts, stamp) -> (text, count, stop)\n\n"
"Traefik's CLF lines (``common``) for ``batch[:stop]`` as UTF-8 bytes, each ending in a newline:\n"
"``{client} - {user} [{stamp(start + offset)}] {head} {count}{tail}{duration ms}ms``, where\n"
"``head, tail = parts.get(key) or make_parts(key)`` for the entry's line key. ``count`` is the\n"
"RequestCount before the batch, returned after it. Stops at the first entry without ``bit`` in\n"
"its mask or with an unexpected type.");

static PyObject *clf_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "clf_lines() takes 7 arguments");
        return NULL;
    }
    PyObject *batch = args[0], *parts = args[4], *make_parts = args[5], *stamp_fn = args[6];
    if (!PyList_CheckExact(batch) || !PyDict_CheckExact(parts)) {
        PyErr_SetString(PyExc_TypeError, "clf_lines(): batch must be a list and parts a dict");
        return NULL;
    }
    long long bit, offset, count;
    if (line_args(args, &bit, &offset, &count) < 0) return NULL;

    Py_ssize_t n = PyList_GET_SIZE(batch);
    Out out;
    if (out_init(&out, n * 160 + 256) < 0) return NULL;
    PyObject *stamp = NULL;     /* strong */
    PyObject *key = NULL;       /* strong: the line key of head/tail */
    PyObject *found = NULL;     /* strong: (head, tail) */
    long long low = 0, high = 0;
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) < E_MIN_LEN) break;
        int ok = 1;
        long long mask = as_ll(PyTuple_GET_ITEM(e, E_MASK), &ok);
        long long start = as_ll(PyTuple_GET_ITEM(e, E_START), &ok);
        long long duration = as_ll(PyTuple_GET_ITEM(e, E_DURATION), &ok);
        PyObject *client = PyTuple_GET_ITEM(e, E_CLIENT_IP);
        PyObject *user = PyTuple_GET_ITEM(e, E_USER);
        PyObject *middle = PyTuple_GET_ITEM(e, E_LINE);
        if (!ok || !(mask & bit) || !PyUnicode_CheckExact(client) || !PyUnicode_CheckExact(user)) break;
        if (!(low <= start && start < high)) {
            long long wall = start + offset;
            low = start - floor_mod(wall, NS_PER_S);
            high = low + NS_PER_S;
            PyObject *w = PyLong_FromLongLong(wall);
            if (w == NULL) goto fail;
            PyObject *s = PyObject_CallOneArg(stamp_fn, w);
            Py_DECREF(w);
            if (s == NULL) goto fail;
            Py_XSETREF(stamp, s);
            if (!PyUnicode_CheckExact(stamp)) {
                PyErr_SetString(PyExc_TypeError, "clf_lines(): stamp() must return a str");
                goto fail;
            }
        }
        if (middle != key) {
            int same = key == NULL ? 0 : PyObject_RichCompareBool(middle, key, Py_EQ);
            if (same < 0) goto fail;
            if (!same) {
                PyObject *got = PyDict_GetItemWithError(parts, middle);
                if (got != NULL) {
                    Py_INCREF(got);
                } else {
                    if (PyErr_Occurred()) goto fail;
                    got = PyObject_CallOneArg(make_parts, middle);
                    if (got == NULL) goto fail;
                }
                if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 2
                    || !PyUnicode_CheckExact(PyTuple_GET_ITEM(got, 0))
                    || !PyUnicode_CheckExact(PyTuple_GET_ITEM(got, 1))) {
                    Py_DECREF(got);
                    PyErr_SetString(PyExc_TypeError, "clf_lines(): parts must be (str, str)");
                    goto fail;
                }
                Py_XSETREF(found, got);
            }
            Py_INCREF(middle);
            Py_XSETREF(key, middle);
        }
        Py_ssize_t line_start = out.len;
        /* every failure goes to line_failed, which tells text errors from the others */
        if (out_str(&out, client) < 0 || OUT_LIT(&out, " - ") < 0 || out_str(&out, user) < 0
            || OUT_LIT(&out, " [") < 0 || out_str(&out, stamp) < 0 || OUT_LIT(&out, "] ") < 0
            || out_str(&out, PyTuple_GET_ITEM(found, 0)) < 0 || OUT_LIT(&out, " ") < 0 || out_int(&out, count + 1) < 0
            || out_str(&out, PyTuple_GET_ITEM(found, 1)) < 0 || out_int(&out, floor_div(duration, 1000000)) < 0
            || OUT_LIT(&out, "ms\n") < 0)
            goto line_failed;
        count += 1;
        continue;
    line_failed:
        /* text that is not valid UTF-8 as it is (lone surrogates): the Python loop writes this
           line and the rest, with its replacement characters */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) goto fail;
        PyErr_Clear();
        out.len = line_start;
        break;
    }
    Py_XDECREF(stamp);
    Py_XDECREF(key);
    Py_XDECREF(found);
    PyObject *text = out_finish(&out);
    if (text == NULL) return NULL;
    return Py_BuildValue("(NLn)", text, count, i);

fail:
    Py_XDECREF(stamp);
    Py_XDECREF(key);
    Py_XDECREF(found);
    Py_XDECREF(out.bytes);
    return NULL;
}


/* ------------------------------------------------------------------ access log: json lines */

/* UTF-8 text as the body of a JSON string, escaped as Python's json.dumps(ensure_ascii=False):
   '"', '\\' and the control characters below 0x20 (\n \r \t \b \f, else \u00xx); all else as is.
   With latin1, the input is Latin-1 bytes (each byte one code point) and is converted to UTF-8. */
static int out_json_text(Out *o, const unsigned char *s, Py_ssize_t n, int latin1) {
    static const char hex[] = "0123456789abcdef";
    if (out_reserve(o, n * 6) < 0) return -1;
    char *p = o->p + o->len;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            if (latin1 && c >= 0x80) {
                *p++ = (char)(0xC0 | (c >> 6));
                *p++ = (char)(0x80 | (c & 0x3F));
            } else {
                *p++ = (char)c;
            }
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        default:
            *p++ = 'u'; *p++ = '0'; *p++ = '0';
            *p++ = hex[c >> 4]; *p++ = hex[c & 15];
        }
    }
    o->len = p - o->p;
    return 0;
}

static int out_json_str(Out *o, PyObject *str) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(str, &n);
    if (u == NULL) return -1;
    return out_json_text(o, (const unsigned char *)u, n, 0);
}


/* The nanoseconds of a second as Go's RFC3339Nano writes them: ".123" (trailing zeros trimmed),
   nothing for zero. */
static int out_frac(Out *o, long long ns) {
    if (ns == 0) return 0;
    char tmp[10];
    tmp[0] = '.';
    for (int k = 9; k >= 1; k--) {
        tmp[k] = (char)('0' + ns % 10);
        ns /= 10;
    }
    int len = 10;
    while (tmp[len - 1] == '0') len--;
    if (out_reserve(o, len) < 0) return -1;
    out_raw(o, tmp, len);
    return 0;
}

/* (utc, local, zone) of a second, from the Python clock; kept while the second does not change */
typedef struct {
    long long second;
    PyObject *parts;  /* strong */
} Second;

static int second_get(Second *s, PyObject *fn, long long second) {
    if (s->parts != NULL && s->second == second) return 0;
    PyObject *arg = PyLong_FromLongLong(second);
    if (arg == NULL) return -1;
    PyObject *parts = PyObject_CallOneArg(fn, arg);
    Py_DECREF(arg);
    if (parts == NULL) return -1;
    if (!PyTuple_CheckExact(parts) || PyTuple_GET_SIZE(parts) != 3 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(parts, 0))
        || !PyUnicode_CheckExact(PyTuple_GET_ITEM(parts, 1)) || !PyUnicode_CheckExact(PyTuple_GET_ITEM(parts, 2))) {
        Py_DECREF(parts);
        PyErr_SetString(PyExc_TypeError, "json_lines(): a clock must return (str, str, str)");
        return -1;
    }
    Py_XSETREF(s->parts, parts);
    s->second = second;
    return 0;
}


/* AccessLog.JSON_FIELDS, in order: bit i of json_lines' keep mask keeps field i */
enum {
    F_CLIENT_ADDR, F_CLIENT_HOST, F_CLIENT_PORT, F_CLIENT_USERNAME, F_DOWNSTREAM_CONTENT_SIZE, F_DOWNSTREAM_STATUS,
    F_DURATION, F_GZIP_RATIO, F_ORIGIN_CONTENT_SIZE, F_ORIGIN_DURATION, F_ORIGIN_STATUS, F_OVERHEAD, F_REQUEST_ADDR,
    F_REQUEST_CONTENT_SIZE, F_REQUEST_COUNT, F_REQUEST_HOST, F_REQUEST_METHOD, F_REQUEST_PATH, F_REQUEST_PORT,
    F_REQUEST_PROTOCOL, F_REQUEST_SCHEME, F_RETRY_ATTEMPTS, F_ROUTER_NAME, F_SERVICE_ADDR, F_SERVICE_NAME,
    F_SERVICE_URL, F_START_LOCAL, F_START_UTC, F_TLS_CIPHER, F_TLS_VERSION, F_ENTRY_POINT_NAME, F_COUNT
};

/* The comma before a member unless it is the first; room for `need` more bytes after it. */
static int json_sep(Out *o, int *first, Py_ssize_t need) {
    if (out_reserve(o, need + 1) < 0) return -1;
    if (!*first) o->p[o->len++] = ',';
    *first = 0;
    return 0;
}

/* `"key":` (given with its quotes and colon), after a comma unless it is the first field; 1 */
static int json_key(Out *o, int *first, const char *key, Py_ssize_t n) {
    if (json_sep(o, first, n) < 0) return -1;
    out_raw(o, key, n);
    return 1;
}

static int out_quoted(Out *o, const unsigned char *s, Py_ssize_t n, int latin1) {
    if (OUT_LIT(o, "\"") < 0 || out_json_text(o, s, n, latin1) < 0 || OUT_LIT(o, "\"") < 0) return -1;
    return 0;
}

static int out_quoted_str(Out *o, PyObject *str) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(str, &n);
    if (u == NULL) return -1;
    return out_quoted(o, (const unsigned char *)u, n, 0);
}

static int out_quoted_bytes(Out *o, PyObject *b) {
    return out_quoted(o, (const unsigned char *)PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), 1);
}


/* ---- json access log headers (fields.headers): request_*, origin_*, downstream_* */

typedef struct {
    const char *name;    /* the canonical name (UTF-8 of a str kept by the cache) */
    Py_ssize_t name_n;
    PyObject *value;     /* bytes (borrowed), or NULL with `num` */
    long long num;       /* a Content-Length ferryman adds */
    int redact;
    Py_ssize_t index;    /* order in the list: the first of equal names wins */
} HItem;

typedef struct {
    HItem *items;
    Py_ssize_t n, cap;
    PyObject *cache;     /* raw name (bytes) -> (canonical name, mode 0 keep / 1 drop / 2 redact) */
    PyObject *info;      /* raw name -> the same, from the Python code */
} Headers;

static PyObject *s_content_length;

static int headers_add(Headers *h, PyObject *raw, PyObject *value, long long num) {
    PyObject *got = PyDict_GetItemWithError(h->cache, raw);  /* borrowed */
    if (got == NULL) {
        if (PyErr_Occurred()) return -1;
        PyObject *made = PyObject_CallOneArg(h->info, raw);
        if (made == NULL) return -1;
        int rc = PyDict_SetItem(h->cache, raw, made);
        Py_DECREF(made);  /* the cache keeps it */
        if (rc < 0) return -1;
        got = made;
    }
    if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(got, 0))
        || !PyLong_CheckExact(PyTuple_GET_ITEM(got, 1))) {
        PyErr_SetString(PyExc_TypeError, "json_lines(): header info must be (str, int)");
        return -1;
    }
    long mode = PyLong_AsLong(PyTuple_GET_ITEM(got, 1));
    if (mode == 1) return 0;  /* drop */
    if (h->n == h->cap) {
        Py_ssize_t cap = h->cap ? h->cap * 2 : 32;
        HItem *items = PyMem_Realloc(h->items, (size_t)cap * sizeof(HItem));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        h->items = items;
        h->cap = cap;
    }
    HItem *it = &h->items[h->n];
    it->name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(got, 0), &it->name_n);
    if (it->name == NULL) return -1;
    it->value = value;
    it->num = num;
    it->redact = mode == 2;
    it->index = h->n;
    h->n++;
    return 0;
}

static int ascii_ieq(PyObject *b, const char *lit, Py_ssize_t n) {
    if (PyBytes_GET_SIZE(b) != n) return 0;
    const char *s = PyBytes_AS_STRING(b);
    for (Py_ssize_t k = 0; k < n; k++) {
        char c = s[k];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != lit[k]) return 0;
    }
    return 1;
}

/* A header list's items (h->n reset first). 1 when done, 0 when the list is not a list of
   (bytes, bytes) pairs (the Python code takes the entry), -1 on error. `unserved` leaves out Date and
   Content-Length (Go adds them after the access log copied the header map); `length` >= 0 adds a
   Content-Length. */
static int headers_collect(Headers *h, PyObject *list, int unserved, long long length) {
    h->n = 0;
    if (list != Py_None) {
        if (!PyList_CheckExact(list)) return 0;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(list); k++) {
            PyObject *pair = PyList_GET_ITEM(list, k);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 0))
                || !PyBytes_CheckExact(PyTuple_GET_ITEM(pair, 1)))
                return 0;
            PyObject *raw = PyTuple_GET_ITEM(pair, 0);
            if (unserved && (ascii_ieq(raw, "date", 4) || ascii_ieq(raw, "content-length", 14))) continue;
            if (headers_add(h, raw, PyTuple_GET_ITEM(pair, 1), 0) < 0) return -1;
        }
    }
    if (length >= 0 && headers_add(h, s_content_length, NULL, length) < 0) return -1;
    return 1;
}

static int hitem_cmp(const void *a, const void *b) {
    const HItem *x = a, *y = b;
    Py_ssize_t n = x->name_n < y->name_n ? x->name_n : y->name_n;
    int c = memcmp(x->name, y->name, (size_t)n);
    if (c) return c;
    if (x->name_n != y->name_n) return x->name_n < y->name_n ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* `"prefix<Name>":"value"` for each collected header, in name order, the first of equal names */
static int headers_write(Headers *h, Out *o, int *first, const char *prefix, Py_ssize_t prefix_n) {
    if (h->n > 1) qsort(h->items, (size_t)h->n, sizeof(HItem), hitem_cmp);
    for (Py_ssize_t k = 0; k < h->n; k++) {
        HItem *it = &h->items[k];
        if (k > 0 && it->name_n == h->items[k - 1].name_n && memcmp(it->name, h->items[k - 1].name, (size_t)it->name_n) == 0)
            continue;
        if (json_sep(o, first, prefix_n + 1) < 0) return -1;
        o->p[o->len++] = '"';
        out_raw(o, prefix, prefix_n);
        if (out_json_text(o, (const unsigned char *)it->name, it->name_n, 0) < 0) return -1;
        if (OUT_LIT(o, "\":") < 0) return -1;
        if (it->redact) {
            if (OUT_LIT(o, "\"REDACTED\"") < 0) return -1;
        } else if (it->value != NULL) {
            if (out_quoted(o, (const unsigned char *)PyBytes_AS_STRING(it->value), PyBytes_GET_SIZE(it->value), 1) < 0)
                return -1;
        } else if (OUT_LIT(o, "\"") < 0 || out_int(o, it->num) < 0 || OUT_LIT(o, "\"") < 0) {
            return -1;
        }
    }
    return 0;
}

static inline int is_str_or_none(PyObject *v) { return v == Py_None || PyUnicode_CheckExact(v); }

PyDoc_STRVAR(json_lines_doc,
"json_lines(batch, bit, offset, count, keep, start_clock, end_clock, headers) -> (text, count, stop)\n\n"
"AccessLog._json's lines (the fields of JSON_FIELDS whose bit is in ``keep``) for ``batch[:stop]``,\n"
"as UTF-8 bytes, each ending in a newline; ``*_clock(second)`` -> ``(utc, local, zone)`` prefixes\n"
"of RFC 3339 times. ``headers``: None (no headers logged), or ``(cache, info)`` where\n"
"``info(raw name) -> (canonical name, mode 0 keep / 1 drop / 2 redact)`` fills ``cache``.\n"
"Stops at the first entry without ``bit`` or with an unexpected type.");

static PyObject *json_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "json_lines() takes 8 arguments");
        return NULL;
    }
    PyObject *batch = args[0], *start_clock = args[5], *end_clock = args[6], *hdr = args[7];
    Headers headers = {NULL, 0, 0, NULL, NULL};
    if (hdr != Py_None) {
        if (!PyTuple_CheckExact(hdr) || PyTuple_GET_SIZE(hdr) != 2 || !PyDict_CheckExact(PyTuple_GET_ITEM(hdr, 0))) {
            PyErr_SetString(PyExc_TypeError, "json_lines(): headers must be None or (dict, callable)");
            return NULL;
        }
        headers.cache = PyTuple_GET_ITEM(hdr, 0);
        headers.info = PyTuple_GET_ITEM(hdr, 1);
        if (PyDict_GET_SIZE(headers.cache) > 4096) PyDict_Clear(headers.cache);  /* names can be endless */
    }
    if (!PyList_CheckExact(batch)) {
        PyErr_SetString(PyExc_TypeError, "json_lines(): batch must be a list");
        return NULL;
    }
    long long bit, offset, count;
    if (line_args(args, &bit, &offset, &count) < 0) return NULL;
    long long keep = PyLong_AsLongLong(args[4]);
    if (keep == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(batch), i;
    Out out;
    if (out_init(&out, n * 700 + 256) < 0) return NULL;
    Second start_s = {0, NULL}, end_s = {0, NULL};
    for (i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) <= E_EXTRA) break;
        int ok = 1;
        long long mask = as_ll(PyTuple_GET_ITEM(e, E_MASK), &ok);
        long long size = as_ll(PyTuple_GET_ITEM(e, E_SIZE), &ok);
        long long req = as_ll(PyTuple_GET_ITEM(e, E_REQ_SIZE), &ok);
        long long start = as_ll(PyTuple_GET_ITEM(e, E_START), &ok);
        long long duration = as_ll(PyTuple_GET_ITEM(e, E_DURATION), &ok);
        long long retries = as_ll(PyTuple_GET_ITEM(e, E_RETRIES), &ok);
        long long client_port = as_ll(PyTuple_GET_ITEM(e, E_CLIENT_PORT), &ok);
        if (!ok || !(mask & bit)) break;
        PyObject *ip = PyTuple_GET_ITEM(e, E_CLIENT_IP), *user = PyTuple_GET_ITEM(e, E_USER);
        PyObject *labels = PyTuple_GET_ITEM(e, E_LABELS), *line = PyTuple_GET_ITEM(e, E_LINE);
        PyObject *extra = PyTuple_GET_ITEM(e, E_EXTRA), *tls = PyTuple_GET_ITEM(e, E_TLS);
        if (!PyUnicode_CheckExact(ip) || !PyUnicode_CheckExact(user) || !PyTuple_CheckExact(labels)
            || PyTuple_GET_SIZE(labels) < 6 || !PyTuple_CheckExact(line) || PyTuple_GET_SIZE(line) < 9
            || !PyTuple_CheckExact(extra) || PyTuple_GET_SIZE(extra) < (hdr != Py_None ? 5 : 2))
            break;
        PyObject *ep = PyTuple_GET_ITEM(labels, 0), *service = PyTuple_GET_ITEM(labels, 1);
        PyObject *router = PyTuple_GET_ITEM(labels, 4);
        PyObject *method = PyTuple_GET_ITEM(line, 1), *target = PyTuple_GET_ITEM(line, 2);
        PyObject *version = PyTuple_GET_ITEM(line, 3), *upstream = PyTuple_GET_ITEM(line, 6);
        long long status = as_ll(PyTuple_GET_ITEM(line, 4), &ok);
        PyObject *authority = PyTuple_GET_ITEM(extra, 0), *scheme = PyTuple_GET_ITEM(extra, 1);
        if (!ok || !PyUnicode_CheckExact(ep) || !is_str_or_none(service) || !is_str_or_none(router)
            || !PyBytes_CheckExact(method) || !PyBytes_CheckExact(target) || !PyBytes_CheckExact(version)
            || !PyUnicode_CheckExact(upstream) || !PyBytes_CheckExact(authority) || !PyBytes_CheckExact(scheme))
            break;
        if (tls != Py_None && (!PyTuple_CheckExact(tls) || PyTuple_GET_SIZE(tls) != 2
                               || !PyUnicode_CheckExact(PyTuple_GET_ITEM(tls, 0))
                               || !PyUnicode_CheckExact(PyTuple_GET_ITEM(tls, 1))))
            break;
        /* the scheme is decoded as UTF-8 by the Python code: ASCII only here */
        const char *sch = PyBytes_AS_STRING(scheme);
        Py_ssize_t sch_n = PyBytes_GET_SIZE(scheme), k;
        for (k = 0; k < sch_n && !(sch[k] & 0x80); k++) {}
        if (k < sch_n) break;
        long long start_ns = start + offset, end_ns = start_ns + duration;
        if (second_get(&start_s, start_clock, floor_div(start_ns, NS_PER_S)) < 0
            || second_get(&end_s, end_clock, floor_div(end_ns, NS_PER_S)) < 0)
            goto fail;
        int served = service != Py_None;
        Py_ssize_t line_start = out.len;
        Py_ssize_t ip_n;
        const char *ip_u = PyUnicode_AsUTF8AndSize(ip, &ip_n);
        if (ip_u == NULL) goto line_failed;
        int v6 = memchr(ip_u, ':', (size_t)ip_n) != NULL;

        int first = 1;
        if (OUT_LIT(&out, "{") < 0) goto fail;
        /* the fields in the order of their names, as json.dumps(sort_keys=True) writes them; K()
           writes the separator and the key of a kept field (keep: the JSON_FIELDS bit mask) */
#define K(f, key) (((keep >> (f)) & 1) ? json_key(&out, &first, "\"" key "\":", (Py_ssize_t)sizeof(key) + 2) : 0)
#define TRY(x) do { if ((x) < 0) goto line_failed; } while (0)
        int r;
        TRY(r = K(F_CLIENT_ADDR, "ClientAddr"));
        if (r) {
            TRY(OUT_LIT(&out, "\""));
            if (v6) TRY(OUT_LIT(&out, "["));
            TRY(out_json_text(&out, (const unsigned char *)ip_u, ip_n, 0));
            if (v6) TRY(OUT_LIT(&out, "]"));
            TRY(OUT_LIT(&out, ":"));
            TRY(out_int(&out, client_port));
            TRY(OUT_LIT(&out, "\""));
        }
        TRY(r = K(F_CLIENT_HOST, "ClientHost"));
        if (r) TRY(out_quoted(&out, (const unsigned char *)ip_u, ip_n, 0));
        TRY(r = K(F_CLIENT_PORT, "ClientPort"));
        if (r) {
            TRY(OUT_LIT(&out, "\""));
            TRY(out_int(&out, client_port));
            TRY(OUT_LIT(&out, "\""));
        }
        TRY(r = K(F_CLIENT_USERNAME, "ClientUsername"));
        if (r) TRY(out_quoted_str(&out, user));
        TRY(r = K(F_DOWNSTREAM_CONTENT_SIZE, "DownstreamContentSize"));
        if (r) TRY(out_int(&out, size));
        TRY(r = K(F_DOWNSTREAM_STATUS, "DownstreamStatus"));
        if (r) TRY(out_int(&out, status));
        TRY(r = K(F_DURATION, "Duration"));
        if (r) TRY(out_int(&out, duration));
        if (!served && size != 0) {  /* no origin response: 0 of the bytes sent came from one */
            TRY(r = K(F_GZIP_RATIO, "GzipRatio"));
            if (r) TRY(OUT_LIT(&out, "0"));
        }
        TRY(r = K(F_ORIGIN_CONTENT_SIZE, "OriginContentSize"));
        if (r) TRY(out_int(&out, served ? size : 0));
        TRY(r = K(F_ORIGIN_DURATION, "OriginDuration"));
        if (r) TRY(out_int(&out, served ? duration : 0));
        TRY(r = K(F_ORIGIN_STATUS, "OriginStatus"));
        if (r) TRY(out_int(&out, served ? status : 0));
        TRY(r = K(F_OVERHEAD, "Overhead"));
        if (r) TRY(out_int(&out, served ? 0 : duration));
        TRY(r = K(F_REQUEST_ADDR, "RequestAddr"));
        if (r) TRY(out_quoted_bytes(&out, authority));
        TRY(r = K(F_REQUEST_CONTENT_SIZE, "RequestContentSize"));
        if (r) TRY(out_int(&out, req));
        TRY(r = K(F_REQUEST_COUNT, "RequestCount"));
        if (r) TRY(out_int(&out, count + 1));
        {
            /* RequestHost / RequestPort: "[v6]:port", "host:port", else the whole authority */
            const char *a = PyBytes_AS_STRING(authority);
            Py_ssize_t an = PyBytes_GET_SIZE(authority);
            const char *host = a, *port = NULL;
            Py_ssize_t host_n = an, port_n = 0;
            if (an > 0 && a[0] == '[') {
                const char *close = memchr(a + 1, ']', (size_t)(an - 1));
                host = a + 1;
                host_n = close ? close - host : an - 1;
                if (close && close + 1 < a + an && close[1] == ':') {
                    port = close + 2;
                    port_n = a + an - port;
                }
            } else {
                const char *colon = memchr(a, ':', (size_t)an);
                if (colon && memchr(colon + 1, ':', (size_t)(a + an - colon - 1)) == NULL) {
                    host_n = colon - a;
                    port = colon + 1;
                    port_n = a + an - port;
                }
            }
            TRY(r = K(F_REQUEST_HOST, "RequestHost"));
            if (r) TRY(out_quoted(&out, (const unsigned char *)host, host_n, 1));
            TRY(r = K(F_REQUEST_METHOD, "RequestMethod"));
            if (r) TRY(out_quoted_bytes(&out, method));
            TRY(r = K(F_REQUEST_PATH, "RequestPath"));
            if (r) TRY(out_quoted_bytes(&out, target));
            TRY(r = K(F_REQUEST_PORT, "RequestPort"));
            if (r) {
                if (port_n > 0) TRY(out_quoted(&out, (const unsigned char *)port, port_n, 1));
                else TRY(OUT_LIT(&out, "\"-\""));
            }
        }
        TRY(r = K(F_REQUEST_PROTOCOL, "RequestProtocol"));
        if (r) {
            const char *v = PyBytes_AS_STRING(version);
            Py_ssize_t vn = PyBytes_GET_SIZE(version);
            TRY(OUT_LIT(&out, "\"HTTP/"));
            if (vn == 1 && (v[0] == '2' || v[0] == '3')) {  /* "HTTP/2.0", "HTTP/3.0" */
                TRY(out_reserve(&out, 3));
                out_raw(&out, v, 1);
                out_raw(&out, ".0", 2);
            } else {
                TRY(out_json_text(&out, (const unsigned char *)v, vn, 1));
            }
            TRY(OUT_LIT(&out, "\""));
        }
        TRY(r = K(F_REQUEST_SCHEME, "RequestScheme"));
        if (r) TRY(out_quoted_bytes(&out, scheme));
        TRY(r = K(F_RETRY_ATTEMPTS, "RetryAttempts"));
        if (r) TRY(out_int(&out, retries));
        if (router != Py_None) {
            TRY(r = K(F_ROUTER_NAME, "RouterName"));
            if (r) TRY(out_quoted_str(&out, router));
        }
        Py_ssize_t up_n;
        const char *up = PyUnicode_AsUTF8AndSize(upstream, &up_n);
        if (up == NULL) goto line_failed;
        if (up_n > 0) {
            /* upstream.split("://", 1)[-1].split("/", 1)[0] */
            const char *addr = up, *end = up + up_n;
            for (const char *q = up; q + 3 <= end; q++) {
                if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
                    addr = q + 3;
                    break;
                }
            }
            const char *slash = memchr(addr, '/', (size_t)(end - addr));
            TRY(r = K(F_SERVICE_ADDR, "ServiceAddr"));
            if (r) TRY(out_quoted(&out, (const unsigned char *)addr, (slash ? slash : end) - addr, 0));
        }
        if (served) {
            TRY(r = K(F_SERVICE_NAME, "ServiceName"));
            if (r) TRY(out_quoted_str(&out, service));
        }
        if (up_n > 0) {
            TRY(r = K(F_SERVICE_URL, "ServiceURL"));
            if (r) TRY(out_quoted(&out, (const unsigned char *)up, up_n, 0));
        }
        long long frac = floor_mod(start_ns, NS_PER_S);
        PyObject *sp = start_s.parts;
        TRY(r = K(F_START_LOCAL, "StartLocal"));
        if (r) {
            TRY(OUT_LIT(&out, "\""));
            TRY(out_json_str(&out, PyTuple_GET_ITEM(sp, 1)));
            TRY(out_frac(&out, frac));
            TRY(out_json_str(&out, PyTuple_GET_ITEM(sp, 2)));
            TRY(OUT_LIT(&out, "\""));
        }
        TRY(r = K(F_START_UTC, "StartUTC"));
        if (r) {
            TRY(OUT_LIT(&out, "\""));
            TRY(out_json_str(&out, PyTuple_GET_ITEM(sp, 0)));
            TRY(out_frac(&out, frac));
            TRY(OUT_LIT(&out, "Z\""));
        }
        if (tls != Py_None) {
            TRY(r = K(F_TLS_CIPHER, "TLSCipher"));
            if (r) TRY(out_quoted_str(&out, PyTuple_GET_ITEM(tls, 1)));
            TRY(r = K(F_TLS_VERSION, "TLSVersion"));
            if (r) TRY(out_quoted_str(&out, PyTuple_GET_ITEM(tls, 0)));
        }
        /* headers: downstream_* sort before entryPointName, origin_* and request_* after msg */
        PyObject *response = Py_None, *request = Py_None;
        long long response_length = -1;
        if (hdr != Py_None) {
            response = PyTuple_GET_ITEM(extra, 3);
            request = PyTuple_GET_ITEM(extra, 4);
            response_length = as_ll(PyTuple_GET_ITEM(extra, 2), &ok);
            if (!ok) {
                out.len = line_start;
                break;
            }
            /* the framing header the connection adds (not for 204/304, not before a head) */
            if (!served || response == Py_None || status == 204 || status == 304) response_length = -1;
            int got = headers_collect(&headers, response, !served, response_length);
            TRY(got);
            if (!got) {
                out.len = line_start;
                break;
            }
            TRY(headers_write(&headers, &out, &first, "downstream_", 11));
        }
        TRY(r = K(F_ENTRY_POINT_NAME, "entryPointName"));
        if (r) TRY(out_quoted_str(&out, ep));
        /* logrus' own fields: always there */
        static const char logrus[] = "\"level\":\"info\",\"msg\":\"\"";
        TRY(json_key(&out, &first, logrus, (Py_ssize_t)sizeof logrus - 1));
        if (hdr != Py_None) {
            if (served) {  /* the same list as downstream_ */
                TRY(headers_write(&headers, &out, &first, "origin_", 7));
            }
            int got = headers_collect(&headers, request, 0, request == Py_None || req <= 0 ? -1 : req);
            TRY(got);
            if (!got) {
                out.len = line_start;
                break;
            }
            TRY(headers_write(&headers, &out, &first, "request_", 8));
        }
        TRY(OUT_LIT(&out, ",\"time\":\""));
        TRY(out_json_str(&out, PyTuple_GET_ITEM(end_s.parts, 1)));
        TRY(out_json_str(&out, PyTuple_GET_ITEM(end_s.parts, 2)));
        TRY(OUT_LIT(&out, "\"}\n"));
#undef K
#undef TRY
        count += 1;
        continue;
    line_failed:
        /* text that is not valid UTF-8 as it is (lone surrogates): the Python code takes over */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) goto fail;
        PyErr_Clear();
        out.len = line_start;
        break;
    }
    Py_XDECREF(start_s.parts);
    Py_XDECREF(end_s.parts);
    PyMem_Free(headers.items);
    PyObject *text = out_finish(&out);
    if (text == NULL) return NULL;
    return Py_BuildValue("(NLn)", text, count, i);

fail:
    Py_XDECREF(start_s.parts);
    Py_XDECREF(end_s.parts);
    PyMem_Free(headers.items);
    Py_XDECREF(out.bytes);
    return NULL;
}

/* ------------------------------------------------------------------ metrics: slots */

/* slot[index] += delta */
static int slot_add(PyObject *slot, Py_ssize_t index, long long delta) {
    if (delta == 0) return 0;
    PyObject *old = PyList_GET_ITEM(slot, index);
    PyObject *d = PyLong_FromLongLong(delta);
    if (d == NULL) return -1;
    PyObject *sum = PyNumber_Add(old, d);
    Py_DECREF(d);
    if (sum == NULL) return -1;
    PyList_SET_ITEM(slot, index, sum);
    Py_DECREF(old);
    return 0;
}

typedef struct {
    long long count, req, resp, total, fast;
} Run;

static int run_flush(PyObject *slot, Run *r) {
    if (r->count
        && (slot_add(slot, 0, r->count) < 0 || slot_add(slot, 1, r->req) < 0 || slot_add(slot, 2, r->resp) < 0
            || slot_add(slot, 3, r->total) < 0 || slot_add(slot, 4, r->fast) < 0))
        return -1;
    memset(r, 0, sizeof *r);
    return 0;
}

PyDoc_STRVAR(metrics_add_doc,
"metrics_add(batch, bit, slots, width, bounds, rare) -> (stop, rare_entries)\n\n"
"Adds ``batch[:stop]`` to ``slots`` (labels -> ``[count, request bytes, response bytes,\n"
"duration ns, bucket0, ..., +Inf]``, created as ``[0] * width``; ``bounds`` the bucket bounds in\n"
"ns, ascending). Runs of equal labels are summed before their slot is touched. Entries with\n"
"retries or TLS (or all of them when ``rare``) are returned for the caller's other counters.\n"
"Stops at the first entry without ``bit`` in its mask or with an unexpected type.");

#define MAX_BOUNDS 64

static PyObject *metrics_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "metrics_add() takes 6 arguments");
        return NULL;
    }
    PyObject *batch = args[0], *slots = args[2], *bounds_obj = args[4];
    if (!PyList_CheckExact(batch) || !PyDict_CheckExact(slots) || !PyTuple_CheckExact(bounds_obj)) {
        PyErr_SetString(PyExc_TypeError, "metrics_add(): batch list, slots dict, bounds tuple");
        return NULL;
    }
    long long bit = PyLong_AsLongLong(args[1]);
    if (bit == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t width = PyLong_AsSsize_t(args[3]);
    if (width == -1 && PyErr_Occurred()) return NULL;
    int rare_all = PyObject_IsTrue(args[5]);
    if (rare_all < 0) return NULL;
    Py_ssize_t nb = PyTuple_GET_SIZE(bounds_obj);
    if (width != 4 + nb + 1) {
        PyErr_SetString(PyExc_ValueError, "metrics_add(): width must be 5 + len(bounds)");
        return NULL;
    }
    if (nb > MAX_BOUNDS) return Py_BuildValue("(n[])", (Py_ssize_t)0);  /* that many buckets: Python's loop */
    long long bounds[MAX_BOUNDS];
    for (Py_ssize_t j = 0; j < nb; j++) {
        bounds[j] = PyLong_AsLongLong(PyTuple_GET_ITEM(bounds_obj, j));
        if (bounds[j] == -1 && PyErr_Occurred()) return NULL;
    }
    long long first = nb ? bounds[0] : -1;

    PyObject *rare = PyList_New(0);
    if (rare == NULL) return NULL;
    PyObject *key = NULL;   /* strong */
    PyObject *slot = NULL;  /* strong */
    Run run = {0, 0, 0, 0, 0};
    Py_ssize_t n = PyList_GET_SIZE(batch), i;
    for (i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) < E_MIN_LEN) break;
        int ok = 1;
        long long mask = as_ll(PyTuple_GET_ITEM(e, E_MASK), &ok);
        long long size = as_ll(PyTuple_GET_ITEM(e, E_SIZE), &ok);
        long long req = as_ll(PyTuple_GET_ITEM(e, E_REQ_SIZE), &ok);
        long long ns = as_ll(PyTuple_GET_ITEM(e, E_DURATION), &ok);
        if (!ok || !(mask & bit)) break;
        PyObject *labels = PyTuple_GET_ITEM(e, E_LABELS);
        if (labels != key) {
            int same = key == NULL ? 0 : PyObject_RichCompareBool(labels, key, Py_EQ);
            if (same < 0) goto fail;
            if (!same) {
                if (slot != NULL && run_flush(slot, &run) < 0) goto fail;
                PyObject *got = PyDict_GetItemWithError(slots, labels);
                if (got != NULL) {
                    Py_INCREF(got);
                } else {
                    if (PyErr_Occurred()) goto fail;
                    got = PyList_New(width);
                    if (got == NULL) goto fail;
                    for (Py_ssize_t j = 0; j < width; j++) PyList_SET_ITEM(got, j, PyLong_FromLong(0));
                    if (PyDict_SetItem(slots, labels, got) < 0) {
                        Py_DECREF(got);
                        goto fail;
                    }
                }
                if (!PyList_CheckExact(got) || PyList_GET_SIZE(got) != width) {
                    Py_DECREF(got);
                    PyErr_SetString(PyExc_TypeError, "metrics_add(): a slot must be a list of width items");
                    goto fail;
                }
                Py_XSETREF(slot, got);
            }
            Py_INCREF(labels);
            Py_XSETREF(key, labels);
        }
        long long t;
        if (__builtin_add_overflow(run.total, ns, &t) || __builtin_add_overflow(run.req, req, &t)
            || __builtin_add_overflow(run.resp, size, &t)) {
            if (run_flush(slot, &run) < 0) goto fail;
        }
        run.count += 1;
        run.req += req;
        run.resp += size;
        run.total += ns;
        if (ns <= first) {
            run.fast += 1;
        } else {
            Py_ssize_t lo = 0, hi = nb;  /* bisect_left */
            while (lo < hi) {
                Py_ssize_t mid = (lo + hi) / 2;
                if (bounds[mid] < ns) lo = mid + 1; else hi = mid;
            }
            if (slot_add(slot, 4 + lo, 1) < 0) goto fail;
        }
        PyObject *retries = PyTuple_GET_ITEM(e, E_RETRIES);
        int retried = PyObject_IsTrue(retries);
        if (retried < 0) goto fail;
        if (retried || PyTuple_GET_ITEM(e, E_TLS) != Py_None || rare_all) {
            if (PyList_Append(rare, e) < 0) goto fail;
        }
    }
    if (slot != NULL && run_flush(slot, &run) < 0) goto fail;
    Py_XDECREF(slot);
    Py_XDECREF(key);
    return Py_BuildValue("(nN)", i, rare);

fail:
    Py_XDECREF(slot);
    Py_XDECREF(key);
    Py_DECREF(rare);
    return NULL;
}


/* ------------------------------------------------------------------ the request path: Finisher */

/*
 * Observer.finish_py (recorder.py) for the common case, as a callable object per observer. It reads
 * the exchange's and the connection's __slots__ at their offsets: the offsets are looked up once per
 * class, from the classes' own member descriptors, and used only for objects of exactly those
 * classes (anything else, and every case it does not handle, goes to the Python method, before any
 * change is made). Not handled here: gRPC responses (their status is in the trailers), observers
 * with headerLabels (they never get a Finisher).
 */

enum {
    X_ROUTER, X_STATUS, X_HEADERS, X_FLAGS, X_CONN, X_OBS_START, X_BODY_LENGTH, X_METHOD, X_SENT,
    X_SERVICE, X_OBS_TARGET, X_VERSION, X_OBS_UPSTREAM, X_OBS_RETRIES, X_OBS_USER, X_OBS, X_AUTHORITY,
    X_REQUIRED,        /* the slots above are always set; resp_length only once a head was sent */
    X_RESP_LENGTH = X_REQUIRED, X_RESP_HEADERS, X_COUNT
};
static const char *const x_names[X_COUNT] = {
    "router", "status", "headers", "flags", "conn", "obs_start", "body_length", "method", "sent",
    "service", "obs_target", "version", "obs_upstream", "obs_retries", "obs_user", "obs", "authority",
    "resp_length", "resp_headers",
};
enum { C_ENTRYPOINT, C_CLIENT_IP, C_CLIENT_PORT, C_TLS, C_SCHEME, C_COUNT };
static const char *const c_names[C_COUNT] = {"entrypoint", "client_ip", "client_port", "tls", "scheme"};

typedef struct {
    PyTypeObject *type;  /* strong; NULL until resolved */
    int usable;
    Py_ssize_t offsets[X_COUNT];  /* X_COUNT >= C_COUNT */
} Layout;

static Layout ex_layout, conn_layout;
static PyObject *s_http, *s_websocket, *s_sse, *s_tls_names, *s_zero, *s_minus_one, *s_materialize;

/* The offsets of a class's T_OBJECT_EX slots, or usable = 0 when one is not such a slot. */
static int layout_resolve(Layout *l, PyTypeObject *type, const char *const *names, int count) {
    Py_XSETREF(l->type, (PyTypeObject *)Py_NewRef(type));
    l->usable = 0;
    for (int k = 0; k < count; k++) {
        PyObject *name = PyUnicode_InternFromString(names[k]);
        if (name == NULL) return -1;
        PyObject *descr = _PyType_Lookup(type, name);  /* borrowed */
        Py_DECREF(name);
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) return 0;
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) return 0;
        l->offsets[k] = member->offset;
    }
    l->usable = 1;
    return 0;
}

/* Whether obj's class is the one of the layout (resolving it at the first sight of a class). */
static int layout_for(Layout *l, PyObject *obj, const char *const *names, int count) {
    PyTypeObject *type = Py_TYPE(obj);
    if (l->type != type && layout_resolve(l, type, names, count) < 0) return -1;
    return l->usable;
}

#define SLOT(obj, layout, k) (*(PyObject **)((char *)(obj) + (layout).offsets[k]))

/* Traefik's SSE test: one of the comma-separated Accept values, trimmed, is text/event-stream. */
static int is_sse(PyObject *accept) {
    static const char want[] = "text/event-stream";
    const Py_ssize_t wlen = (Py_ssize_t)sizeof want - 1;
    const char *p = PyBytes_AS_STRING(accept), *end = p + PyBytes_GET_SIZE(accept);
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *a = p, *b = stop;
        while (a < b && (*a == ' ' || (*a >= '\t' && *a <= '\r'))) a++;
        while (b > a && (b[-1] == ' ' || (b[-1] >= '\t' && b[-1] <= '\r'))) b--;
        if (b - a == wlen) {
            Py_ssize_t k = 0;
            while (k < wlen) {
                char c = a[k];
                if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
                if (c != want[k]) break;
                k++;
            }
            if (k == wlen) return 1;
        }
        if (comma == NULL) break;
        p = comma + 1;
    }
    return 0;
}

static inline int name_is(PyObject *name, const char *lit, Py_ssize_t n) {
    return PyBytes_GET_SIZE(name) == n && memcmp(PyBytes_AS_STRING(name), lit, (size_t)n) == 0;
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *internal;   /* set of *@internal router names */
    PyObject *pending;    /* the recording's list */
    PyObject *fallback;   /* Observer.finish_py (bound) */
    PyObject *mask;
    PyObject *internal_mask;
    long long internal_bits;
    long long websocket_bit;
    int scan;
    int json;             /* the json access log's extras: 1 without, 2 with the header lists */
} Finisher;

static int Finisher_traverse(Finisher *self, visitproc visit, void *arg) {
    Py_VISIT(self->internal);
    Py_VISIT(self->pending);
    Py_VISIT(self->fallback);
    return 0;
}

static int Finisher_clear(Finisher *self) {
    Py_CLEAR(self->internal);
    Py_CLEAR(self->pending);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->mask);
    Py_CLEAR(self->internal_mask);
    return 0;
}

static void Finisher_dealloc(Finisher *self) {
    PyObject_GC_UnTrack(self);
    Finisher_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Finisher_init(Finisher *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"mask", "internal_mask", "internal", "pending", "scan", "websocket_bit", "fallback",
                             "json", NULL};
    PyObject *mask, *internal_mask, *internal, *pending, *fallback;
    int scan, json = 0;
    long long websocket_bit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!iLO|i:Finisher", kwlist, &PyLong_Type, &mask, &PyLong_Type,
                                     &internal_mask, &PySet_Type, &internal, &PyList_Type, &pending, &scan,
                                     &websocket_bit, &fallback, &json))
        return -1;
    self->json = json;
    if (json < 0 || json > 2) {
        PyErr_SetString(PyExc_ValueError, "Finisher(): json is 0, 1 or 2");
        return -1;
    }
    if (scan < 0 || scan > 2) {
        PyErr_SetString(PyExc_ValueError, "Finisher(): scan is 0, 1 or 2");
        return -1;
    }
    self->internal_bits = PyLong_AsLongLong(internal_mask);
    if (self->internal_bits == -1 && PyErr_Occurred()) return -1;
    Py_XSETREF(self->mask, Py_NewRef(mask));
    Py_XSETREF(self->internal_mask, Py_NewRef(internal_mask));
    Py_XSETREF(self->internal, Py_NewRef(internal));
    Py_XSETREF(self->pending, Py_NewRef(pending));
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    self->scan = scan;
    self->websocket_bit = websocket_bit;
    return 0;
}

static PyObject *Finisher_fallback(Finisher *self, PyObject *ex, PyObject *trailers, PyObject *status) {
    PyObject *args[3] = {ex, trailers, status};
    return PyObject_Vectorcall(self->fallback, args, 3, NULL);
}

static PyObject *Finisher_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Finisher *self = (Finisher *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "finish(ex, trailers=None, status=0)");
        return NULL;
    }
    PyObject *zero = s_zero;
    PyObject *ex = args[0];
    PyObject *trailers = nargs > 1 ? args[1] : Py_None;
    PyObject *status_arg = nargs > 2 ? args[2] : zero;
    if (self->pending == NULL) {
        PyErr_SetString(PyExc_ValueError, "Finisher is not initialised");
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t end;
    if (PyTime_PerfCounter(&end) < 0) return NULL;
#else
    long long end = _PyTime_GetPerfCounter();
#endif
    int ok = layout_for(&ex_layout, ex, x_names, X_COUNT);
    if (ok < 0) return NULL;
    if (!ok) return Finisher_fallback(self, ex, trailers, status_arg);
    if (self->json == 2) {
        /* Traefik logs the X-Forwarded-* it adds: into ex.headers first (idempotent; they do not
           change the protocol label or the CLF's Referer/User-Agent) */
        PyObject *done = PyObject_CallMethodNoArgs(ex, s_materialize);
        if (done == NULL) return NULL;
        Py_DECREF(done);
    }
    PyObject *v[X_COUNT];
    for (int k = 0; k < X_REQUIRED; k++) {
        v[k] = SLOT(ex, ex_layout, k);
        if (v[k] == NULL) return Finisher_fallback(self, ex, trailers, status_arg);
    }
    v[X_RESP_LENGTH] = SLOT(ex, ex_layout, X_RESP_LENGTH);  /* both unset before a head */
    v[X_RESP_HEADERS] = SLOT(ex, ex_layout, X_RESP_HEADERS);
    PyObject *conn = v[X_CONN];
    ok = layout_for(&conn_layout, conn, c_names, C_COUNT);
    if (ok < 0) return NULL;
    if (!ok) return Finisher_fallback(self, ex, trailers, status_arg);
    PyObject *c[C_COUNT];
    for (int k = 0; k < C_COUNT; k++) {
        c[k] = SLOT(conn, conn_layout, k);
        if (c[k] == NULL) return Finisher_fallback(self, ex, trailers, status_arg);
    }
    if (!PyLong_CheckExact(v[X_STATUS]) || !PyLong_CheckExact(v[X_FLAGS]) || !PyLong_CheckExact(v[X_OBS_START])
        || !PyLong_CheckExact(v[X_BODY_LENGTH]) || !PyLong_CheckExact(v[X_SENT]))
        return Finisher_fallback(self, ex, trailers, status_arg);

    /* the consumers that want it */
    PyObject *mask = self->mask;
    PyObject *router = v[X_ROUTER];
    int internal = PySet_GET_SIZE(self->internal) ? PySet_Contains(self->internal, router) : 0;
    if (internal < 0) return NULL;
    if (internal) {
        mask = self->internal_mask;
        if (self->internal_bits == 0) {
            Py_SETREF(SLOT(ex, ex_layout, X_OBS), Py_NewRef(Py_None));
            Py_RETURN_NONE;
        }
    }
    PyObject *status = PyObject_IsTrue(v[X_STATUS]) ? v[X_STATUS] : status_arg;

    /* the protocol label, and the Referer / User-Agent of the CLF line */
    PyObject *proto = s_http, *referer = Py_None, *ua = Py_None;
    if (self->scan) {
        PyObject *headers = v[X_HEADERS];
        if (!PyList_CheckExact(headers)) return Finisher_fallback(self, ex, trailers, status_arg);
        PyObject *accept = NULL, *ctype = NULL;
        Py_ssize_t n = PyList_GET_SIZE(headers);
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *h = PyList_GET_ITEM(headers, k);
            if (!PyTuple_CheckExact(h) || PyTuple_GET_SIZE(h) != 2 || !PyBytes_CheckExact(PyTuple_GET_ITEM(h, 0))
                || !PyBytes_CheckExact(PyTuple_GET_ITEM(h, 1)))
                return Finisher_fallback(self, ex, trailers, status_arg);
            PyObject *name = PyTuple_GET_ITEM(h, 0), *value = PyTuple_GET_ITEM(h, 1);
            switch (PyBytes_GET_SIZE(name)) {
            case 6:
                if (accept == NULL && name_is(name, "accept", 6)) accept = value;
                break;
            case 7:
                if (self->scan == 2 && referer == Py_None && name_is(name, "referer", 7)) referer = value;
                break;
            case 10:
                if (self->scan == 2 && ua == Py_None && name_is(name, "user-agent", 10)) ua = value;
                break;
            case 12:
                if (ctype == NULL && name_is(name, "content-type", 12)) ctype = value;
                break;
            }
        }
        long long flags = PyLong_AsLongLong(v[X_FLAGS]);
        if (flags == -1 && PyErr_Occurred()) return NULL;
        if (flags & self->websocket_bit) {
            proto = s_websocket;
        } else if (accept != NULL && PyBytes_GET_SIZE(accept) >= 17 && is_sse(accept)) {
            proto = s_sse;
        } else if (ctype != NULL && PyBytes_GET_SIZE(ctype) >= 16
                   && memcmp(PyBytes_AS_STRING(ctype), "application/grpc", 16) == 0) {
            return Finisher_fallback(self, ex, trailers, status_arg);  /* the gRPC status */
        }
    }
    PyObject *tls = Py_None;
    int on_tls = PyObject_IsTrue(c[C_TLS]);
    if (on_tls < 0) return NULL;
    if (on_tls) {
        /* Python code while v[] and c[] are borrowed from the slots: ConnInfo.tls_names() only sets
           conn.tls_names_, which is not among them (keep it so, or take references first) */
        tls = PyObject_CallMethodNoArgs(conn, s_tls_names);
        if (tls == NULL) return NULL;
    } else {
        Py_INCREF(tls);
    }
    long long start = PyLong_AsLongLong(v[X_OBS_START]);
    long long length = PyLong_AsLongLong(v[X_BODY_LENGTH]);
    if (PyErr_Occurred()) {
        Py_DECREF(tls);
        return NULL;
    }
    PyObject *extra = Py_None;
    if (self->json) {
        /* (authority, scheme, response length or -1 before a head, and with headers logged the
           response's and the request's header lists) */
        int head = PyObject_IsTrue(v[X_STATUS]);
        PyObject *length = head ? v[X_RESP_LENGTH] : s_minus_one;
        PyObject *response = head ? v[X_RESP_HEADERS] : Py_None;
        if (length == NULL || (self->json == 2 && response == NULL)) {
            Py_DECREF(tls);
            return Finisher_fallback(self, ex, trailers, status_arg);
        }
        if (self->json == 2)
            extra = PyTuple_Pack(5, v[X_AUTHORITY], c[C_SCHEME], length, response, v[X_HEADERS]);
        else
            extra = PyTuple_Pack(5, v[X_AUTHORITY], c[C_SCHEME], length, Py_None, Py_None);
        if (extra == NULL) {
            Py_DECREF(tls);
            return NULL;
        }
    } else {
        Py_INCREF(extra);
    }
    PyObject *entry = NULL, *labels = NULL, *line = NULL, *duration = NULL, *req = NULL;
    labels = PyTuple_Pack(6, c[C_ENTRYPOINT], v[X_SERVICE], proto, status, router, v[X_METHOD]);
    line = PyTuple_Pack(9, router, v[X_METHOD], v[X_OBS_TARGET], v[X_VERSION], status, v[X_SENT], v[X_OBS_UPSTREAM],
                        referer, ua);
    duration = PyLong_FromLongLong((long long)end - start);
    req = length > 0 ? Py_NewRef(v[X_BODY_LENGTH]) : Py_NewRef(zero);
    if (labels != NULL && line != NULL && duration != NULL)
        entry = PyTuple_Pack(14, mask, labels, line, v[X_SENT], req, v[X_OBS_START], duration, v[X_OBS_RETRIES],
                             c[C_CLIENT_IP], c[C_CLIENT_PORT], v[X_OBS_USER], tls, Py_None, extra);
    Py_XDECREF(labels);
    Py_XDECREF(line);
    Py_XDECREF(duration);
    Py_DECREF(req);
    Py_DECREF(tls);
    Py_DECREF(extra);
    if (entry == NULL) return NULL;
    /* done: the exchange is no longer recorded */
    Py_SETREF(SLOT(ex, ex_layout, X_OBS), Py_NewRef(Py_None));
    int rc = PyList_Append(self->pending, entry);
    Py_DECREF(entry);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Finisher_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)args;
    (void)kwds;
    Finisher *self = (Finisher *)type->tp_alloc(type, 0);
    if (self != NULL) self->vectorcall = Finisher_vectorcall;
    return (PyObject *)self;
}

PyDoc_STRVAR(Finisher_doc,
"Finisher(mask, internal_mask, internal, pending, scan, websocket_bit, fallback, json=0)\n\n"
"``finish(ex, trailers=None, status=0)`` of an observer (recorder.Observer.finish_py) for the common\n"
"case: appends the exchange's entry to ``pending``; calls ``fallback`` with the same arguments for\n"
"what it does not handle (gRPC, unexpected classes or types).");

static PyTypeObject FinisherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ferryman._speedups.Finisher",
    .tp_basicsize = sizeof(Finisher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = Finisher_doc,
    .tp_new = Finisher_new,
    .tp_init = (initproc)Finisher_init,
    .tp_dealloc = (destructor)Finisher_dealloc,
    .tp_traverse = (traverseproc)Finisher_traverse,
    .tp_clear = (inquiry)Finisher_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Finisher, vectorcall),
};

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"clf_lines", (PyCFunction)(void (*)(void))clf_lines, METH_FASTCALL, clf_lines_doc},
    {"json_lines", (PyCFunction)(void (*)(void))json_lines, METH_FASTCALL, json_lines_doc},
    {"metrics_add", (PyCFunction)(void (*)(void))metrics_add, METH_FASTCALL, metrics_add_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ferryman._speedups",
    "Compiled loops of the observability batches (optional; the Python code is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&FinisherType) < 0) return NULL;
    if ((s_http = PyUnicode_InternFromString("http")) == NULL
        || (s_websocket = PyUnicode_InternFromString("websocket")) == NULL
        || (s_sse = PyUnicode_InternFromString("sse")) == NULL
        || (s_tls_names = PyUnicode_InternFromString("tls_names")) == NULL
        || (s_materialize = PyUnicode_InternFromString("materialize_forwarded")) == NULL
        || (s_zero = PyLong_FromLong(0)) == NULL || (s_minus_one = PyLong_FromLong(-1)) == NULL
        || (s_content_length = PyBytes_FromString("content-length")) == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Finisher", (PyObject *)&FinisherType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
